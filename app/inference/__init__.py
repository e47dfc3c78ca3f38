"""Model inference: adapters that call speech-to-speech systems, and the Celery jobs that fill in
every prompt's response for a model."""
