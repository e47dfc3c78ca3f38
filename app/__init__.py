"""S2S Arena: blind pairwise listening votes that rank speech-to-speech models."""
