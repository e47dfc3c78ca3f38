"""Automatic judges: the papers' prompts, reading their replies, and judge–human agreement."""
