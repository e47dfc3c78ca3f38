"""What a listener judges, per task and level: the evaluation targets of the S2S-Arena paper's
Table 9 (its 19 seed tasks) and its four levels (Appendix A.2), worded for a person voting."""

from __future__ import annotations

from dataclasses import dataclass

# Table 9: "Task Description Across Four Domains in S2S-Arena Seed Dataset", keyed by the task
# name in lower case.
TASK_TARGETS = {
    "pronunciation correction": "Can the model correct inaccurate pronunciations?",
    "emphasis control": "Can the model understand stress emphasis and emphasize specific content "
                        "with the right stress?",
    "rhythm control": "Can the model adjust the output pace, speaking faster or slower as "
                      "required?",
    "polyphonic word comprehension": "Can the model accurately understand polyphonic word?",
    "pause and segmentation": "Can the model accurately pause and segment in ambiguous cases?",
    "cross-lingual emotional translation": "Can the model accurately convey emotions during "
                                           "translation?",
    "language consistency": "Does the model respond in the same language as the query when "
                            "asked in different languages?",
    "implication understanding": "Can the model respond humorously, understanding implied "
                                 "meanings?",
    "sarcasm detection": "Can the model detect sarcasm in phrases like “You’re amazing!”?",
    "identity-based response": "Can the model adapt responses based on the user’s age (child, "
                               "adult, elderly) and handle identity-based queries?",
    "emotion recognition and expression": "Can the model recognize emotions and provide "
                                          "appropriate responses based on different emotions?",
    "singing capability": "Can the model sing a song upon request?",
    "natural sound simulation": "Can the model simulate certain natural sounds?",
    "poetry recitation": "Can the model recite poems?",
    "role-playing": "Can the model simulate a character with specific age, gender, accent, and "
                    "voice tone?",
    "storytelling": "Can the model narrate a story with emotional depth?",
    "tongue twisters": "Can the model correctly pronounce a given tongue twister?",
    "stand-up comedy/skit performance": "Can the model perform a skit, playing both roles in a "
                                        "comedic dialogue?",
    "health consultation": "Can the model provide general health advice?",
}

# The paper's level guide (Appendix A.2), as what to listen for.
LEVELS = {
    "L1": ("Instruction only",
           "Judge whether the answer follows the spoken request. How the voices sound is not "
           "judged at this level."),
    "L2": ("Perceive",
           "The way the request is spoken (emotion, tone, age, sarcasm, background) carries "
           "information. Judge whether the answer picks it up and responds to it."),
    "L3": ("Express",
           "The request asks for a particular way of speaking. Judge whether the answer's "
           "voice does it (pace, stress, emotion, character), as well as what it says."),
    "L4": ("Perceive and express",
           "Judge both: does the answer pick up how the request was spoken, and does its own "
           "voice respond in the right way?"),
}


@dataclass(frozen=True)
class Guideline:
    task: str
    target: str | None  # the question the task asks of a model
    level: str
    level_name: str
    level_text: str


def guideline(task: str, level: str, task_description: str | None = None) -> Guideline:
    """The guideline for a prompt. A task outside Table 9 is described by the prompt's own
    task description, when it has one."""
    target = TASK_TARGETS.get(task.strip().lower()) or (task_description or None)
    name, text = LEVELS.get(level, ("", ""))
    return Guideline(task=task, target=target, level=level, level_name=name, level_text=text)
