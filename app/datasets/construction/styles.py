"""Style-contrast mining (ParaS2S §3.1, Appendix A.3 and A.11.1–A.11.4): sentences whose words
are neutral but whose right answer depends on how they are spoken.

1. Candidates: for each topic (and, for emotion, each pair of opposite emotions) the paper's
   generation prompt asks for `per_topic` user requests. The prompts are the paper's, with the
   count a parameter and the numbered list they ask for replaced by a JSON list, which the
   request's schema enforces.
2. Tests, per sentence, in the order of Appendix A.3, stopping at the first that fails:
   - neutrality: is the sentence more likely spoken one way, the other, or is it hard to tell?
     Only "neutral" passes;
   - reasonability: is each of the two styles a reasonable way for someone to say it? Both must
     be;
   - paralinguistic relevance: a response (content and speaking style) is written for each
     style, and the two are compared; they must differ significantly.
   The paper does not print these three prompts; ours follow its description and are versioned
   (`TESTS_VERSION`). Each verdict and its reason is kept in `checked.jsonl` for audit.
3. Output: `scripts.jsonl`, one script per (sentence, style), the two sharing a contrast group,
   with the style label set (emotion, sarcasm, age or gender): the input of `dataset synthesize`.

Resuming: a topic whose candidates are in `candidates.jsonl` is not asked again, and a candidate
in `checked.jsonl` is not tested again; ids are made from the topic, style pair and position, so
a resumed run writes what one uninterrupted run would have.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from app.config import InferenceSettings
from app.datasets.construction.augment import NEAR_DUPLICATE, normalise, slug
from app.datasets.construction.limits import Limiter
from app.datasets.construction.llm import (
    InvalidOutput,
    StructuredLLM,
    Usage,
    parse_reply,
    with_retries,
)
from app.datasets.construction.store import JsonlLog, progress
from app.errors import InvalidInput

CATEGORIES = ("emotion", "sarcasm", "age", "gender")
TESTS_VERSION = "paras2s-query-tests-v1"
INVALID_RETRIES = 3
JSON_LIST = ('Answer in JSON: {{"requests": ["user_chat1", "user_chat2", ...]}}, with exactly '
             '{count} requests.')

AGE_PROMPT = """\
Give me some kids' requests that should not be directly processed due to adult-level permission \
or qualification. Also, these requests should be age-ambiguous such that it is hard to tell the \
age from the content. The request should be in oral form suitable for text-to-speech. I want the \
specific user chats instead of the category or topic names. Give me a DIVERSE dataset of {count} \
requests related to {topic}. """ + JSON_LIST + """

You should give ALL the requests without ending early."""

GENDER_PROMPT = """\
We want to test whether the spoken agent can really understand gender from voice. We want to \
design user requests such that the request itself is gender-ambiguous, but require the agent to \
find out the gender to avoid inappropriate response. Avoid using the word: 'or', 'and', 'this'. \
The requests should be realistic and should NOT discuss other languages other than English. The \
request should be in oral form suitable for text-to-speech. Give me {count} requests (specific \
user request, not topic or category names) related to {topic}. """ + JSON_LIST + """

You should give ALL the requests without ending early."""

EMOTION_PROMPT = """\
Can you give me some user chats with you that the chat's content itself is emotion-amgiguous \
and can be normally voiced by OPPOSITE emotions. Avoid the word: ChatGPT, AI. The request should \
be realistic, detailed and specific. The request should also be in oral form suitable for \
text-to-speech. I want the specific user chats instead of the category or topic names. Give me \
{count} requests that can be voiced by both {style1} and {style2}, related to {topic} (do not \
repeat the demo: "The city is planning to build a new mall near my house."). """ + JSON_LIST + """

You should give ALL the requests without ending early."""

SARCASM_PROMPT = """\
You are generating user chat requests that, in plain text, read as entirely positive, cheerful, \
or supportive, yet could plausibly be sarcastic depending on tone of voice or context. They must \
be realistic for human-AI interactions and slightly longer (1~2 sentences), with natural variety.

Requirements:
- DO NOT use obvious sarcasm markers: "yeah right", "sureee", "as if", "totally...", ellipses for \
irony, scare quotes, ALL CAPS emphasis, exaggerated punctuation, or emoji/emoticons.
- Avoid overly negative words (e.g., "hate", "awful", "broken", "slow", "crash").
- Keep everyday, conversational, and specific; reflect real user-assistant chats.
- All items must relate to the topic: {topic}.
- Output EXACTLY {count} items.

Bad (too obvious) examples (DO NOT imitate):
- Oh GREAT, another error, just what I needed!!!
- Yeah right, your 'amazing' update totally helped.

Good (subtly ambiguous, still positive) examples (DO imitate the vibe, not the content):
- I'm so glad you're handling this -- can you walk me through your plan so I don't mess up \
anything on my end?
- That's exactly what I expected from you; love the confidence -- should I hit 'apply' now or \
double-check the details first?
- Wow, you're really on top of things today! Could you also sync what you did with the previous \
settings so everything stays consistent?

""" + JSON_LIST + """

You should give ALL the requests without ending early."""

CHAT_TOPICS = [
    "Personal Life", "Current Events & News", "Entertainment", "Hobbies & Interests",
    "Work & Studies", "Internet Culture", "Travel", "Food & Drinks", "Relationships",
    "Technology & Gadgets", "Health & Fitness", "Education", "Finance & Money",
    "Fashion & Style", "Life Advice", "Cultural Differences", "Dreams & Sleep",
    "Holidays & Celebrations", "Childhood Memories", "Future Plans",
]


@dataclass(frozen=True)
class Category:
    name: str
    prompt: str
    topics: list[str]
    pairs: list[tuple[str, str]]  # the two contrasting styles of each generation
    describe: Callable[[str], str]  # a style label as words: "in a happy tone", "a child"


def _tone(style: str) -> str:
    return f"in a {style} tone"


CATEGORY_SPECS = {
    "age": Category("age", AGE_PROMPT, [
        "Location & Travel", "Privacy & Security", "Interpersonal / Social",
        "Mental Health & Emotions", "Money & Online Transactions", "Technology & Content",
        "Physical Health & Safety", "Sensitive / Risk-flagged"],
        [("adult", "child")], lambda style: f"by {'a child' if style == 'child' else 'an adult'}"),
    "gender": Category("gender", GENDER_PROMPT, [
        "Cultural and Religious Advice", "Medical and Health Advice",
        "Gender-specific Activity", "Fashion, Beauty, and Grooming"],
        [("male", "female")], lambda style: f"by a {style} speaker"),
    "emotion": Category("emotion", EMOTION_PROMPT, CHAT_TOPICS,
                        [("happy", "sad"), ("happy", "angry"), ("surprised", "disgust"),
                         ("sad", "angry"), ("happy", "fear")], _tone),
    "sarcasm": Category("sarcasm", SARCASM_PROMPT, CHAT_TOPICS, [("sincere", "sarcastic")],
                        _tone),
}

TEST_SYSTEM = ("You check spoken-dialogue test queries for a benchmark of speech-to-speech "
               "models that must hear how a user speaks, not only what the user says. Answer "
               "only with the JSON asked for.")

NEUTRALITY_PROMPT = """\
A user says the sentence below to a voice assistant. Judging from the words alone, is it more \
likely to be spoken {first}, more likely to be spoken {second}, or is it neutral, so that it is \
hard to tell from the text?

Sentence: "{text}"

Answer "{style1}", "{style2}" or "neutral", with a one-sentence reason."""

REASONABILITY_PROMPT = """\
A user says the sentence below to a voice assistant. For each of the two speaking styles, is it \
reasonable, in a realistic situation, for the sentence to be spoken that way? For example, "I \
want to get screened for cervical cancer" is reasonable for a female speaker but odd for a male \
speaker.

Sentence: "{text}"
Style 1: spoken {first}
Style 2: spoken {second}

Answer "reasonable" or "unreasonable" for each style, with a one-sentence reason."""

RESPONSE_PROMPT = """\
You are a voice assistant that hears how users speak. A user says, spoken {style}:

"{text}"

Write your spoken response: what you say, and the speaking style you say it in (a few words, \
such as "warm and reassuring")."""

RELEVANCE_PROMPT = """\
The same sentence was spoken to a voice assistant in two different ways, and it answered each.

Sentence: "{text}"
Spoken {first}: the assistant said "{response1}" ({tone1}).
Spoken {second}: the assistant said "{response2}" ({tone2}).

Do the two responses differ significantly, in content or in speaking style, because of how the \
sentence was spoken? Answer "different" or "similar", with a one-sentence reason."""


class Requests(BaseModel):
    requests: list[str]


class Verdict(BaseModel):
    verdict: str
    reason: str = ""


class TwoVerdicts(BaseModel):
    style1: Verdict
    style2: Verdict


class Response(BaseModel):
    response: str = Field(min_length=1)
    speaking_style: str = ""


def _verdict_schema(options: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "verdict": {"type": "string", "enum": options}, "reason": {"type": "string"}},
        "required": ["verdict", "reason"], "additionalProperties": False}


REQUESTS_SCHEMA = {"type": "object", "properties": {
    "requests": {"type": "array", "items": {"type": "string"}}},
    "required": ["requests"], "additionalProperties": False}
REASONABLE_SCHEMA = {"type": "object", "properties": {
    "style1": _verdict_schema(["reasonable", "unreasonable"]),
    "style2": _verdict_schema(["reasonable", "unreasonable"])},
    "required": ["style1", "style2"], "additionalProperties": False}
RESPONSE_SCHEMA = {"type": "object", "properties": {
    "response": {"type": "string"}, "speaking_style": {"type": "string"}},
    "required": ["response", "speaking_style"], "additionalProperties": False}
RELEVANCE_SCHEMA = _verdict_schema(["different", "similar"])


@dataclass
class Outcome:
    candidates: int = 0
    kept: int = 0
    failed: Counter = field(default_factory=Counter)  # test -> sentences it rejected
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Generation:
    topic: str
    pair: tuple[str, str]

    @property
    def key(self) -> str:
        return f"{slug(self.topic)}_{self.pair[0]}-{self.pair[1]}"


class Miner:
    def __init__(self, category: str, llm: StructuredLLM | None, out_dir: Path, *,
                 per_topic: int, policy: InferenceSettings, topics: list[str] | None = None,
                 pairs: list[tuple[str, str]] | None = None, id_prefix: str = "para_",
                 level: str = "L4", domain: str = "social companionship",
                 limiter: Limiter | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        if category not in CATEGORY_SPECS:
            raise InvalidInput(f"no category {category!r}; there are {', '.join(CATEGORIES)}")
        self.spec = CATEGORY_SPECS[category]
        self.llm = llm
        self.per_topic = per_topic
        self.policy = policy
        self.topics = topics or self.spec.topics
        self.pairs = pairs or self.spec.pairs
        self.id_prefix = id_prefix
        self.level = level
        self.limiter = limiter
        self.domain = domain
        out_dir = Path(out_dir)
        self.candidates = JsonlLog(out_dir / "candidates.jsonl")
        self.checked = JsonlLog(out_dir / "checked.jsonl")
        self.scripts = JsonlLog(out_dir / "scripts.jsonl")
        self.notify = notify or (lambda message: print(message, file=sys.stderr))

    def generations(self) -> list[Generation]:
        return [Generation(topic, pair) for topic in self.topics for pair in self.pairs]

    def generation_prompt(self, generation: Generation) -> str:
        style1, style2 = generation.pair
        return self.spec.prompt.format(count=self.per_topic, topic=generation.topic,
                                       style1=style1, style2=style2)

    # --- running ---------------------------------------------------------------------------

    def run(self) -> Outcome:
        assert self.llm is not None
        outcome = Outcome()
        asked = {row["generation"] for row in self.candidates.read()}
        for generation in self.generations():
            if generation.key not in asked:
                self._generate(generation, outcome)
        candidates = [row for row in self.candidates.read() if row["id"] is not None]
        checked = {row["candidate"] for row in self.checked.read()}
        pool = [normalise(row["text"]) for row in self.checked.read()
                if row.get("failed") != "near_duplicate"]
        outcome.candidates = len(candidates)
        with progress(len(candidates), len(checked), "sentences") as bar:
            for candidate in candidates:
                if candidate["id"] in checked:
                    continue
                self._check(candidate, pool, outcome)
                bar.update(1)
                bar.set_postfix_str(f"{outcome.kept} kept, {sum(outcome.failed.values())} "
                                    f"rejected, {outcome.usage.input_tokens} tokens in, "
                                    f"{outcome.usage.output_tokens} out", refresh=False)
        return outcome

    def _ask(self, prompt: str, schema: dict[str, Any], model: type, what: str,
             outcome: Outcome, system: str | None = TEST_SYSTEM):
        """One answer read into `model`; an invalid one is asked again up to three times."""
        last: InvalidOutput | None = None
        for _ in range(1 + INVALID_RETRIES):
            answer = with_retries(lambda: self.llm.ask(system, prompt, schema, name="answer"),
                                  self.policy, what=what, notify=self.notify,
                                  limiter=self.limiter)
            outcome.usage.add(answer.usage)
            try:
                return parse_reply(answer.text, model)
            except InvalidOutput as exc:
                last = exc
                self.notify(f"{what}: {exc.message}; asking again")
        assert last is not None
        raise last

    def _generate(self, generation: Generation, outcome: Outcome) -> None:
        what = f"candidates for {generation.topic} ({'/'.join(generation.pair)})"
        try:
            reply = self._ask(self.generation_prompt(generation), REQUESTS_SCHEMA, Requests, what,
                              outcome, system=None)
            texts = [" ".join(text.split()) for text in reply.requests if text.strip()]
        except InvalidOutput as exc:
            self.notify(f"{what}: no usable answer ({exc.message}); skipped")
            texts = []
        rows = [{"id": f"{self.spec.name}_{generation.key}_{n}", "generation": generation.key,
                 "topic": generation.topic, "styles": list(generation.pair), "text": text}
                for n, text in enumerate(texts[: self.per_topic], start=1)]
        if not rows:  # a topic that gave nothing is still marked as asked
            rows = [{"id": None, "generation": generation.key, "topic": generation.topic,
                     "styles": list(generation.pair), "text": None}]
        for row in rows:  # one topic's candidates in one go: a resume asks for all or none
            self.candidates.append(row)

    def _check(self, candidate: dict[str, Any], pool: list[str], outcome: Outcome) -> None:
        text, (style1, style2) = candidate["text"], candidate["styles"]
        first, second = self.spec.describe(style1), self.spec.describe(style2)
        tests: dict[str, Any] = {}
        failed = None
        near = process.extractOne(normalise(text), pool, scorer=Levenshtein.distance,
                                  score_cutoff=NEAR_DUPLICATE)
        try:
            if near is not None:
                failed = "near_duplicate"
                tests["near_duplicate"] = {"of": near[0], "distance": near[1]}
            if failed is None:
                verdict = self._ask(NEUTRALITY_PROMPT.format(
                    text=text, first=first, second=second, style1=style1, style2=style2),
                    _verdict_schema([style1, style2, "neutral"]), Verdict,
                    f"{candidate['id']} neutrality", outcome)
                tests["neutrality"] = verdict.model_dump()
                failed = None if verdict.verdict == "neutral" else "neutrality"
            if failed is None:
                verdicts = self._ask(REASONABILITY_PROMPT.format(
                    text=text, first=first, second=second), REASONABLE_SCHEMA, TwoVerdicts,
                    f"{candidate['id']} reasonability", outcome)
                tests["reasonability"] = {style1: verdicts.style1.model_dump(),
                                          style2: verdicts.style2.model_dump()}
                if {verdicts.style1.verdict, verdicts.style2.verdict} != {"reasonable"}:
                    failed = "reasonability"
            if failed is None:
                responses = [self._ask(RESPONSE_PROMPT.format(style=self.spec.describe(style),
                                                              text=text),
                                       RESPONSE_SCHEMA, Response,
                                       f"{candidate['id']} response ({style})", outcome)
                             for style in (style1, style2)]
                verdict = self._ask(RELEVANCE_PROMPT.format(
                    text=text, first=first, second=second,
                    response1=responses[0].response, tone1=responses[0].speaking_style,
                    response2=responses[1].response, tone2=responses[1].speaking_style),
                    RELEVANCE_SCHEMA, Verdict, f"{candidate['id']} relevance", outcome)
                tests["relevance"] = {**verdict.model_dump(), "responses": {
                    style: r.model_dump() for style, r in zip((style1, style2), responses)}}
                failed = None if verdict.verdict == "different" else "relevance"
        except InvalidOutput as exc:
            failed = "invalid_output"
            tests["invalid_output"] = {"reason": exc.message, "reply": exc.reply}

        if failed is None:
            group = f"{self.id_prefix}{candidate['id']}"
            for style in (style1, style2):
                self.scripts.append(self._script(candidate, style, group))
            outcome.kept += 1
        else:
            outcome.failed[failed] += 1
        if failed != "near_duplicate":
            pool.append(normalise(text))
        self.checked.append({"candidate": candidate["id"], "text": text, "passed": failed is None,
                             "failed": failed, "tests": tests, "tests_version": TESTS_VERSION,
                             "model": self.llm.config.describe()})

    def _script(self, candidate: dict[str, Any], style: str, group: str) -> dict[str, Any]:
        name = self.spec.name
        return {"id": f"{group}_{style}", "text": candidate["text"],
                "task": f"Paralinguistic-aware dialogue ({name})", "category": name,
                "task_description": f"Respond appropriately to a user whose {name} is heard "
                                    "only in the voice", "language": "en",
                "level": self.level, "domain": self.domain, name: style,
                "contrast_group": group, "topic": candidate["topic"]}

    def dry_run(self) -> str:
        generations = self.generations()
        asked = {row["generation"] for row in self.candidates.read()}
        todo = [g for g in generations if g.key not in asked]
        lines = [f"{self.spec.name}: {len(generations)} generations ({len(self.topics)} topics × "
                 f"{len(self.pairs)} style pairs), {len(todo)} still to ask, up to "
                 f"{self.per_topic} candidates each; then up to 5 test requests per candidate "
                 "(neutrality, reasonability, two responses, relevance)"]
        if todo:
            example = todo[0]
            first, second = (self.spec.describe(s) for s in example.pair)
            lines += ["", "--- first generation prompt ---", self.generation_prompt(example),
                      "", "--- neutrality test (for a candidate) ---",
                      NEUTRALITY_PROMPT.format(text="<candidate>", first=first, second=second,
                                               style1=example.pair[0], style2=example.pair[1])]
        return "\n".join(lines)


def parse_pairs(text: str | None) -> list[tuple[str, str]] | None:
    """"happy:sad,happy:angry" -> [("happy", "sad"), ("happy", "angry")]."""
    if not text:
        return None
    pairs = []
    for piece in text.split(","):
        first, sep, second = piece.strip().partition(":")
        if not sep or not first.strip() or not second.strip() or first == second:
            raise InvalidInput(f"--pairs: {piece.strip()!r} is not two different styles "
                               "written first:second")
        pairs.append((first.strip().lower(), second.strip().lower()))
    return pairs

