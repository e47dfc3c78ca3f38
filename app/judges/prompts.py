"""The judges' prompts, in the papers' own words wherever the papers print them.

Every prompt carries a version, stored with each vote or score a judge makes, so a leaderboard can
tell which wording produced which verdicts. Changing a prompt's text means a new version.

- Pairwise (S2S-Arena, §4.1 "Speech-native Judging" and Appendix A.5 "Human vs. Automatic
  Evaluation Consistency"): a plain-text *Text Content Instruction* goes with an *Audio Evaluation
  Prompt*. In the paper the latter is a synthesized spoken version of the text below with the
  three clips spliced in at the bracketed markers; `PairwisePrompt.parts()` splits the text at
  those markers, so a judge can either speak the text pieces or send them as text parts
  interleaved with the audio. The answer is a strict win/loss, no ties.
- Pointwise (ParaS2S, §3.2 and Appendix A.11.5 "Scoring guideline"): a text LLM reads the
  prompt's transcript and style labels, the response's ASR transcript and a caption of its
  speaking tone, and scores 1–5 against the guideline r, f_gpt = GPT(c_i, s_i, c_o, s_o, r).
- The caption stage: ParaS2S runs AudioReasoner to "extract output speaking tone" and prints no
  prompt for it, so `CAPTION_PROMPT` is ours, worded from rule 2 of the A.11.5 guideline.

Text prompts use `string.Template` ($name) placeholders, so braces in the text (the JSON answer
forms) need no escaping and a transcript containing "$" or "{" is inserted as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from string import Template
from typing import Literal


class AudioSlot(Enum):
    """Where a clip goes in the pairwise evaluation prompt: the paper's bracketed markers."""

    INPUT = "[input audio]"
    FIRST = "[output audio 1]"
    SECOND = "[output audio 2]"


_SLOT_MARKERS = re.compile("(" + "|".join(re.escape(slot.value) for slot in AudioSlot) + ")")


@dataclass(frozen=True)
class PairwisePrompt:
    """A pairwise judge prompt: a plain-text instruction and an evaluation prompt with slots."""

    version: str
    instruction: str
    evaluation: str
    answer: Literal["phrase", "json"]

    def parts(self) -> tuple[str | AudioSlot, ...]:
        """The evaluation prompt as text pieces and audio slots, in order."""
        pieces = _SLOT_MARKERS.split(self.evaluation)
        return tuple(AudioSlot(piece) if _SLOT_MARKERS.fullmatch(piece) else piece
                     for piece in pieces if piece)


@dataclass(frozen=True)
class TextPrompt:
    """A text prompt with `string.Template` placeholders."""

    version: str
    template: str

    @property
    def fields(self) -> frozenset[str]:
        return frozenset(Template(self.template).get_identifiers())

    def render(self, **values: str) -> str:
        """The prompt with every placeholder filled; a missing or unknown field is an error."""
        if unknown := set(values) - self.fields:
            raise ValueError(f"{self.version} has no fields {sorted(unknown)}")
        if missing := self.fields - set(values):
            raise ValueError(f"{self.version} needs fields {sorted(missing)}")
        return Template(self.template).substitute(values)


# --- S2S-Arena, Appendix A.5 --------------------------------------------------------------------

TEXT_CONTENT_INSTRUCTION = "Please follow the audio instruction to generate the response."

PHRASE_ANSWER = "You only need to reply with 'First one wins' or 'Second one wins.'"

AUDIO_EVALUATION_PROMPT = f"""\
I will provide an input audio and two corresponding response audios. Please evaluate which \
response is better. {PHRASE_ANSWER} Here is the input audio: [input audio], the first response: \
[output audio 1], and the second response: [output audio 2].

My requirement: A. When comparing the quality of two output audios, you need to check:

1. Check the instruction alignment: Does output audio follow the instructions of the input audio \
or complete the corresponding task?
2. Check the expressiveness: Does the output audio recognize the paralinguistic information \
(such as vocal tone, speaking speed, emotion, etc.) in the input audio or respond to such \
paralinguistic information?
3. Check the quality of the output audio: the sound (such as fluency, integrity, naturalness of \
speech)."""

# Ours: the same prompt with the answer sentence asking for JSON with a short reason.
JSON_ANSWER = (
    'You only need to reply with a JSON object {"winner": "first" or "second", "reason": "..."}, '
    'where "first" means the first response wins, "second" means the second response wins, and '
    "the reason is one short sentence."
)

PAIRWISE_PROMPT = PairwisePrompt(
    version="s2s-arena-a5-v1",
    instruction=TEXT_CONTENT_INSTRUCTION,
    evaluation=AUDIO_EVALUATION_PROMPT,
    answer="phrase",
)

PAIRWISE_JSON_PROMPT = PairwisePrompt(
    version="s2s-arena-a5-json-v1",
    instruction=TEXT_CONTENT_INSTRUCTION,
    evaluation=AUDIO_EVALUATION_PROMPT.replace(PHRASE_ANSWER, JSON_ANSWER),
    answer="json",
)

# --- ParaS2S, Appendix A.11.5 -------------------------------------------------------------------

SCORING_GUIDELINE = """\
You are a human dialogue expert. You will be given a pair of user request audio and an agent \
response audio. Please focus on the user's speech attributes, including content, emotion, age, \
gender, sarcasm, and decide whether the agent's response is a good fit in a natural dialogue. \
Here is a guideline defining the good response of an agent. You need to score the response's \
quality from different dimensions: Continuation Fitness.

General guideline of Continuation Fitness

- MOS on how well the response speech fits the user speech.
- Listen carefully to spoken content and speaking style of the user speech and the response \
speech. Decide whether the response speech, including how and what the agent says, is a natural \
continuation to the user's spoken content and speaking style (emotion, age, gender, sarcasm). \
Here are some general rules and examples:
  1. The agent should be friendly, helpful, and considerate, with high EQ.
  2. Besides the replying content, please also listen carefully to the response's speaking \
style: emotion, tone, volume and speed, and decide whether the speaking style is appropriate.
  3. The agent should be aware of the user's emotions to provide emotional companionship. For \
example, when the user is happy, the agent can share that happiness; when the user is sad, the \
agent should be sad and empathic.
  4. If the user is a child, the agent should respond with caution and ensure safety. For \
example, it should redirect the user if he or she attempts to purchase alcohol online.
  5. The agent should be aware of the user's gender and personalize responses. For example, it \
may offer different suggestions for swimwear.
  6. Suggesting items more related to male for female, or vice versa, is considered very \
awkward. For example, suggesting masculinised perfume for a female is awkward.
  7. The agent should recognize sarcasm and understand the user's true intent. For example, when \
a user gives a sarcastic compliment, the agent should recognize that the underlying sentiment is \
negative. Hence, it would be weird if the agent feels happy for the compliment.

You should rate the response's quality in 5 points.

5 Points - Perfect (Enhanced):

The user's age, gender, or speaking style characteristics are recognized and reflected in the \
response with appropriate enhancements. The user's query contains clear emotional cues, and the \
response provides empathetic feedback. The user's query has a clear sarcastic tone, and the \
response offers a high-EQ reassurance or clarification. The user's query is a sincere \
compliment, and the response is thankful.

Examples: When the user is happy, the response shares the joy; when the user is sad, the \
response offers appropriate comfort. If a minor attempts to purchase alcoholic beverages online, \
the model provides correct guidance. For a young user, the response uses trendy slang popular \
among young people. Provides gender-suitable response (i.e. different swimwear suggestions) based \
on the user's gender. When receiving a sarcastic comment, the model identifies the underlying \
negative sentiment and responds accordingly.

4 Points - Excellent (No Enhancement):

The user's paralinguistic cues are addressed so the replying content is good, but the response's \
vocal tone does not enhance the user's experience.

Examples: A neutral-tone response to a female user inquiring about cancer screening. A \
neutral-tone response to a neutral question. The response's content picks up the user's \
sarcastic comment, but the tone is not appropriate.

3 Points - Average:

The user's paralinguistic cues or other speaking style features are considered, but the response \
does not provide correct personalized content, though it is not jarring: Mechanical empathy, \
awkward praise, etc.

Examples: A happy or sad response to a neutral question.

2 Points - Poor:

The user's paralinguistic cues or other speaking style features are considered but poorly \
addressed. Emotion mismatch: if the agent identifies the wrong user emotion. e.g. Reply to a \
fearful user as if he/she is sad; Reply to a angry user as if he/she is fearful. Style partially \
mismatched.

Examples: A flat response to a sad question. Using slang when responding to an elderly user.

1 Point - Very Poor:

The user's paralinguistic cues or other speaking style features are considered but addressed \
incorrectly. Reverse empathy, condescending tone. e.g. Reply to a sad user as if he/she is happy; \
Reply to a happy user as if he/she is sad. Completely mismatched style, e.g., responding to an \
adult in a completely childish tone. Misinterpret a sincere compliment as a negative comment, and \
give apologetic, clarifying, or reassuring comment. Misinterpret a sarcastic compliment as \
sincere, and give positive or thankful comment.

Examples: A cheerful response to a sad user. Using language that is too complex for a child. \
Giving male-specific recommendation to a female, or vice versa."""

# The paper's slots are "{transcription}{emotion}{sarcasm}{age}{gender}" for the user and
# "{transcription}{tone}" for the agent; we lay them out one labelled line each.
SCORING_INFORMATION = """\
The information of the user:

Transcription: $prompt_transcript
Emotion: $emotion
Sarcasm: $sarcasm
Age: $age
Gender: $gender

Here is the information of the agent:

Transcription: $response_transcript
Tone: $response_caption"""

SCORE_ANSWER = ("Please give the 5-point score and a VERY brief reason in the format: "
                "The reason is _; The score is _ .")

# Ours: the same request as a JSON object.
SCORE_JSON_ANSWER = ('Please give the 5-point score and a VERY brief reason as a JSON object '
                     '{"reason": "...", "score": N}, where N is 1, 2, 3, 4 or 5.')

SCORE_PROMPT = TextPrompt(
    version="paras2s-a11.5-v1",
    template=f"{SCORING_GUIDELINE}\n\n{SCORING_INFORMATION}\n\n{SCORE_ANSWER}",
)

SCORE_JSON_PROMPT = TextPrompt(
    version="paras2s-a11.5-json-v1",
    template=f"{SCORING_GUIDELINE}\n\n{SCORING_INFORMATION}\n\n{SCORE_JSON_ANSWER}",
)

UNLABELLED = "unknown"

# Ours: ParaS2S prints no prompt for its caption model.
CAPTION_PROMPT = TextPrompt(
    version="arena-tone-caption-v1",
    template=(
        "Describe the speaking style of this speech in one or two sentences: the speaker's "
        "emotion, tone, volume and speed, and whether it sounds sarcastic. Describe how it is "
        "said, not what is said: do not transcribe the words."
    ),
)

PROMPTS: dict[str, PairwisePrompt | TextPrompt] = {
    prompt.version: prompt
    for prompt in (PAIRWISE_PROMPT, PAIRWISE_JSON_PROMPT, SCORE_PROMPT, SCORE_JSON_PROMPT,
                   CAPTION_PROMPT)
}


def render_score_prompt(
    *,
    prompt_transcript: str,
    response_transcript: str,
    response_caption: str,
    emotion: str | None = None,
    sarcasm: str | None = None,
    age: str | None = None,
    gender: str | None = None,
    prompt: TextPrompt = SCORE_PROMPT,
) -> str:
    """The A.11.5 scoring prompt for one response: c_i and s_i of the prompt, c_o and s_o of the
    response. A style label the prompt does not carry reads as "unknown"."""
    labels = {"emotion": emotion, "sarcasm": sarcasm, "age": age, "gender": gender}
    return prompt.render(
        prompt_transcript=prompt_transcript,
        response_transcript=response_transcript,
        response_caption=response_caption,
        **{name: UNLABELLED if value is None else value for name, value in labels.items()},
    )
