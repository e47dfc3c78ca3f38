"""Making new prompt sets: the `s2s-arena dataset ...` commands.

- `augment` grows hand-made seed scripts by self-instruction (S2S-Arena §3.3.2, Appendix A.2);
- `mine-styles` mines sentences whose right answer depends on how they are spoken, in contrast
  pairs (ParaS2S §3.1, Appendix A.3 and A.11);
- `synthesize` turns scripts into speech through a TTS adapter chosen per style, drops clips whose
  transcript strays from the script (the word error rate filter) and can mix in background noise;
  its output folder is a dataset bundle that `s2s-arena import-dataset` takes as it is.

Every command writes each accepted item to disk as soon as it has it, so a run that is stopped
resumes where it stopped, and every remote call retries by the workers' rules.
"""
