"""Admin exports: the vote log (JSONL, Parquet), preference and score data in the Hugging Face
audiofolder layout, and prompts in the dataset import format. All streamed."""
