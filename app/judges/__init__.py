"""Automatic judges: audio LLMs that vote in battles like human raters, their prompts, the
parsing of their replies, and how well they agree with humans."""
