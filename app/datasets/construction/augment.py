"""Self-instruct augmentation of seed scripts (S2S-Arena §3.3.2 and Appendix A.2).

Seeds are grouped into subsets (by `category`, or by `task`). Each round shows an LLM five seeds of
one subset, drawn at random, with the paper's system prompt and user prompt (schema, level guide
L1–L4, "significantly different from the seeds") and asks for exactly one new script in the seed
schema {id, text, task, category, task_description, language, text_cn, level}, its output held
to a JSON schema. An invalid reply is asked again, up to three more times (Appendix A.2,
"Controlled Generation with Reliability"). A script whose normalised text (lower case, no
punctuation, single spaces) lies within Levenshtein distance 3 of a seed's or an accepted
script's is dropped as a near-duplicate (the matching of Appendix A.3.2). Every accepted script
is appended to `scripts.jsonl` at once, every drop to `drops.jsonl` with its reason, and the run
stops when each subset holds its target.

Runs are deterministic given `--seed` and the model's answers: the seeds shown in a round are
drawn from (seed, subset, script number, round, try), never from a stream that a restart would
reset, and the script's id is ours (the prefix, the subset and its number), so a run that was
stopped and started again writes what one uninterrupted run would have written.
"""

from __future__ import annotations

import json
import random
import re
import sys
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from app.config import InferenceSettings
from app.datasets.construction.limits import Limiter
from app.datasets.construction.llm import (
    InvalidOutput,
    StructuredLLM,
    Usage,
    parse_reply,
    with_retries,
)
from app.datasets.construction.store import JsonlLog, progress, read_jsonl
from app.datasets.schemas import DOMAIN_ALIASES
from app.db.models import LEVELS
from app.errors import InvalidInput

PROMPT_VERSION = "s2s-arena-self-instruct-v1"
SEEDS_SHOWN = 5
INVALID_RETRIES = 3  # a round is asked again this many times after an invalid reply
ROUNDS_PER_SCRIPT = 10  # near-duplicate rounds in a row before a subset is given up
NEAR_DUPLICATE = 3  # Levenshtein distance between normalised texts
LANGUAGES = ("English", "Chinese")  # the paper's user prompt: "Chinese or English"
SCHEMA_KEYS = ("id", "text", "task", "category", "task_description", "language", "text_cn",
               "level")

SYSTEM_PROMPT = """\
You are an expert speech-to-speech (S2S) evaluation data curator. Your goal is to create synthetic \
test items that will be used to benchmark S2S large-language models both **with** and \
**without** paralinguistic information (e.g., prosody, emotion, background noise, speaker traits). \
Given several seed JSON examples, return new JSON that:

- Follow the exact schema of the seeds (same keys, valid values).
- Reflect realistic, diverse content spanning different tasks, domains, languages, and \
paralinguistic conditions.
- Respect the dataset's four difficulty levels L1-L4 (see definitions below).
- Contain only valid JSON (no comments or extra text)."""

LEVEL_GUIDE = """\
Level definitions:

L1 Instruction-Only: follow the semantic instruction; paralinguistics are not evaluated.

L2 Perceive-In: infer paralinguistic information present in the input speech and adapt the \
reply accordingly (no requirement on output paralinguistics).

L3 Express-Out: obey an explicit request to embed designated paralinguistic traits in the \
output speech, while the input speech itself is neutral.

L4 Perceive & Express: jointly understand input paralinguistics and reproduce appropriate \
paralinguistics in the output, mirroring real S2S interaction."""

USER_PROMPT = """\
Schema
{schema}
Level Guide
{level_guide}
Seeds ({count} examples)
{seed_json}
Task

Generate one **new** example that:

1. Conform to the schema exactly (all required keys, same key order is appreciated).
2. Are plausible and should be significant different with the seeds.
3. Use unique "id"s prefixed with "{id_prefix}" followed by an incrementing integer; this \
example's id is "{item_id}".
4. It should be considered that the generated **<text>** attribute can serve as a good input \
for the TTS model, thereby generating problem speech.
5. {subset_rule}
6. Return ONLY the JSON, nothing else."""

SUBSET_RULES = {
    "category": "**<category>** should be {value}, **<tasks>** could be various and "
                "**<language>** should be Chinese or English.",
    "task": "**<task>** should be {value}, **<category>** should be {category} and "
            "**<language>** should be Chinese or English.",
}

SCRIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "text": {"type": "string", "description": "what the speaker says: the input for TTS"},
        "task": {"type": "string"},
        "category": {"type": "string"},
        "task_description": {"type": "string"},
        "language": {"type": "string", "enum": list(LANGUAGES)},
        "text_cn": {"type": "string"},
        "level": {"type": "string", "enum": list(LEVELS)},
    },
    "required": list(SCHEMA_KEYS),
    "additionalProperties": False,
}


class Script(BaseModel):
    """One script in the seed schema, as the model must answer it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str
    text: str = Field(min_length=1)
    task: str = Field(min_length=1, max_length=200)  # the import's limits
    category: str = Field(default="", max_length=200)
    task_description: str = ""
    language: Literal["English", "Chinese"]
    text_cn: str = ""
    level: Literal["L1", "L2", "L3", "L4"]


@dataclass
class Seed:
    row: dict[str, Any]
    subset: str
    level: str
    domain: str | None

    def shown(self) -> dict[str, Any]:
        """The seed as the model sees it: the schema's keys, in the schema's order."""
        return {key: self.row.get(key, "") for key in SCHEMA_KEYS}


@dataclass
class Subset:
    name: str
    seeds: list[Seed]
    domain: str | None  # the seeds' (most common) domain, given to every generated script
    category: str  # for a subset by task: its seeds' most common category


@dataclass
class Plan:
    subsets: list[Subset]
    target: int
    subset_by: str
    id_prefix: str


@dataclass
class Outcome:
    written: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason kind -> count
    short: dict[str, int] = field(default_factory=dict)  # subset -> scripts it holds
    usage: Usage = field(default_factory=Usage)


def normalise(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed (Appendix A.3.2)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) else ch for ch in text)
    return " ".join(text.split())


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", normalise(text)).strip("-") or "subset"


def load_seeds(path: Path, subset_by: str) -> list[Seed]:
    """The seed file, checked: every line an object with an id, a text, a level L1-L4 and the
    field the subsets are made by; a domain, when given, one of the arena's four."""
    problems: list[str] = []
    seeds: list[Seed] = []
    ids: Counter = Counter()
    for number, row in read_jsonl(path, "seed scripts"):
        where = f"{path.name} line {number}: "
        for key in ("id", "text", subset_by):
            if not str(row.get(key) or "").strip():
                problems.append(where + f"{key} is missing")
        level = row.get("level")
        level = f"L{level}" if isinstance(level, int) else str(level or "").strip().upper()
        if level not in LEVELS:
            problems.append(where + f"level {row.get('level')!r} is not one of "
                            f"{', '.join(LEVELS)}")
        domain = None
        if row.get("domain") not in (None, ""):
            domain = DOMAIN_ALIASES.get(str(row["domain"]).strip().lower())
            if domain is None:
                problems.append(where + f"domain {row['domain']!r} is not one of the arena's")
        ids[str(row.get("id"))] += 1
        seeds.append(Seed({**row, "level": level}, str(row.get(subset_by) or "").strip(),
                          level, domain))
    if repeated := sorted(key for key, count in ids.items() if count > 1):
        problems.append(f"seed ids appear more than once: {', '.join(repeated)}")
    if problems:
        more = [f"... and {len(problems) - 10} more"] if len(problems) > 10 else []
        raise InvalidInput("the seeds have problems: " + "; ".join(problems[:10] + more))
    return seeds


def plan(seeds: list[Seed], *, target: int, subset_by: str, id_prefix: str,
         only: list[str] | None = None) -> Plan:
    groups: dict[str, list[Seed]] = defaultdict(list)
    for seed in seeds:
        groups[seed.subset].append(seed)
    if only:
        if unknown := [name for name in only if name not in groups]:
            raise InvalidInput(f"no seeds in subset {', '.join(map(repr, unknown))}; the "
                               f"subsets are {', '.join(map(repr, sorted(groups)))}")
        groups = {name: groups[name] for name in only}
    subsets = []
    for name in sorted(groups):
        members = groups[name]
        domains = Counter(seed.domain for seed in members if seed.domain)
        categories = Counter(str(seed.row.get("category") or "") for seed in members)
        subsets.append(Subset(name, members, domains.most_common(1)[0][0] if domains else None,
                              categories.most_common(1)[0][0]))
    return Plan(subsets, target, subset_by, id_prefix)


def script_id(plan_: Plan, subset: Subset, number: int) -> str:
    return f"{plan_.id_prefix}{slug(subset.name)}_{number}"


def draw_seeds(subset: Subset, seed: int, number: int, round_: int, attempt: int
               ) -> list[Seed]:
    rng = random.Random(f"{seed}|{subset.name}|{number}|{round_}|{attempt}")
    return rng.sample(subset.seeds, min(SEEDS_SHOWN, len(subset.seeds)))


def user_prompt(plan_: Plan, subset: Subset, shown: list[Seed], item_id: str) -> str:
    prefix = f"{plan_.id_prefix}{slug(subset.name)}_"
    return USER_PROMPT.format(
        schema=json.dumps(SCRIPT_SCHEMA, indent=2), level_guide=LEVEL_GUIDE,
        count=len(shown),
        seed_json=json.dumps([seed.shown() for seed in shown], indent=2, ensure_ascii=False),
        id_prefix=prefix, item_id=item_id,
        subset_rule=SUBSET_RULES[plan_.subset_by].format(value=subset.name,
                                                         category=subset.category))


class Augmenter:
    """Runs a plan against a model, into `out_dir` (scripts.jsonl, drops.jsonl)."""

    def __init__(self, plan_: Plan, llm: StructuredLLM | None, out_dir: Path, *, seed: int,
                 policy: InferenceSettings, limiter: Limiter | None = None,
                 notify: Callable[[str], None] | None = None) -> None:
        self.plan = plan_
        self.limiter = limiter
        self.llm = llm
        self.seed = seed
        self.policy = policy
        self.scripts = JsonlLog(Path(out_dir) / "scripts.jsonl")
        self.drops = JsonlLog(Path(out_dir) / "drops.jsonl")
        self.notify = notify or (lambda message: print(message, file=sys.stderr))

    def existing(self) -> dict[str, list[dict[str, Any]]]:
        """The scripts already written, by subset (a subset's field is held to its name)."""
        by_subset: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in self.scripts.read():
            by_subset[str(row.get(self.plan.subset_by, ""))].append(row)
        return by_subset

    def run(self) -> Outcome:
        assert self.llm is not None
        outcome = Outcome()
        written = self.existing()
        # Near-duplicates are looked for among every seed and every accepted script.
        pool = [normalise(seed.row["text"]) for subset in self.plan.subsets
                for seed in subset.seeds]
        pool += [normalise(str(row.get("text", ""))) for rows in written.values()
                 for row in rows]
        total = self.plan.target * len(self.plan.subsets)
        done = sum(min(len(written.get(s.name, [])), self.plan.target)
                   for s in self.plan.subsets)
        with progress(total, done, "scripts") as bar:
            for subset in self.plan.subsets:
                number = len(written.get(subset.name, []))
                while number < self.plan.target:
                    row = self._one(subset, number + 1, pool, outcome, bar)
                    if row is None:
                        outcome.short[subset.name] = number
                        self.notify(f"subset {subset.name!r}: {ROUNDS_PER_SCRIPT} rounds in a row "
                                    f"gave no new script; it stops at {number}")
                        break
                    self.scripts.append(row)
                    pool.append(normalise(row["text"]))
                    number += 1
                    outcome.written += 1
                    bar.update(1)
        return outcome

    def _one(self, subset: Subset, number: int, pool: list[str], outcome: Outcome,
             bar) -> dict[str, Any] | None:
        """The next script of a subset, or None when every round failed."""
        item_id = script_id(self.plan, subset, number)
        for round_ in range(ROUNDS_PER_SCRIPT):
            script, shown = self._round(subset, number, round_, item_id, outcome, bar)
            if script is None:
                continue
            near = process.extractOne(normalise(script.text), pool, scorer=Levenshtein.distance,
                                      score_cutoff=NEAR_DUPLICATE)
            if near is not None:
                self._drop(outcome, "near_duplicate", item_id, round_,
                           f"the text is within edit distance {near[1]} of an earlier one: "
                           f"{near[0]!r}", script.text)
                continue
            row = script.model_dump()
            row["id"] = item_id  # ours, whatever the model wrote
            row[self.plan.subset_by] = subset.name  # the subset is held, as the prompt asks
            if self.plan.subset_by == "task" and not row["category"]:
                row["category"] = subset.category
            if subset.domain:
                row["domain"] = subset.domain
            row["seed_ids"] = [seed.row["id"] for seed in shown]
            row["generator"] = {"model": self.llm.config.describe(),
                                "prompt_version": PROMPT_VERSION}
            return row
        return None

    def _round(self, subset: Subset, number: int, round_: int, item_id: str, outcome: Outcome,
               bar) -> tuple[Script | None, list[Seed]]:
        shown: list[Seed] = []
        for attempt in range(1 + INVALID_RETRIES):
            shown = draw_seeds(subset, self.seed, number, round_, attempt)
            prompt = user_prompt(self.plan, subset, shown, item_id)
            try:
                answer = with_retries(
                    lambda: self.llm.ask(SYSTEM_PROMPT, prompt, SCRIPT_SCHEMA, name="script"),
                    self.policy, what=item_id, notify=self.notify, limiter=self.limiter)
                outcome.usage.add(answer.usage)
                script = parse_reply(answer.text, Script)
            except InvalidOutput as exc:
                self._drop(outcome, "invalid_output", item_id, round_, exc.message, exc.reply)
                continue
            finally:
                bar.set_postfix_str(f"{outcome.usage.input_tokens} tokens in, "
                                    f"{outcome.usage.output_tokens} out, "
                                    f"{sum(outcome.dropped.values())} dropped", refresh=False)
            return script, shown
        return None, shown

    def _drop(self, outcome: Outcome, kind: str, item_id: str, round_: int, reason: str,
              reply: str) -> None:
        outcome.dropped[kind] += 1
        self.drops.append({"id": item_id, "round": round_, "kind": kind, "reason": reason,
                           "reply": reply})


def dry_run(plan_: Plan, existing: Mapping[str, list], seed: int, describe: str) -> str:
    """What a run would do, and the first request it would send."""
    lines = [f"would ask {describe} for {plan_.target} scripts per subset "
             f"({len(plan_.subsets)} subsets by {plan_.subset_by}):"]
    first = None
    for subset in plan_.subsets:
        have = len(existing.get(subset.name, []))
        need = max(plan_.target - have, 0)
        lines.append(f"  {subset.name}: {len(subset.seeds)} seeds, {have} written, {need} to make"
                     + (f" (domain {subset.domain})" if subset.domain else ""))
        if need and first is None:
            number = have + 1
            item_id = script_id(plan_, subset, number)
            first = user_prompt(plan_, subset, draw_seeds(subset, seed, number, 0, 0), item_id)
    if first is None:
        lines.append("nothing to do: every subset holds its target")
    else:
        lines += ["", "--- system prompt ---", SYSTEM_PROMPT, "",
                  "--- first user prompt ---", first]
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]], subset_by: str) -> str:
    """The distribution by level (the paper's Table 2) and by domain and subset (Table 8)."""
    levels = Counter(str(row.get("level")) for row in rows)
    lines = [f"{len(rows)} scripts", "",
             "by level:  " + "  ".join(f"{level} {levels.get(level, 0)}" for level in LEVELS)]
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for row in rows:
        table[(str(row.get("domain") or "(no domain)"), str(row.get(subset_by)))][
            str(row.get("level"))] += 1
    width = max([len(subset_by)] + [len(name) for _, name in table]) + 2
    domain_width = max([6] + [len(domain) for domain, _ in table]) + 2
    lines += ["", f"{'domain':<{domain_width}}{subset_by:<{width}}"
              + "".join(f"{level:>5}" for level in LEVELS) + f"{'total':>7}"]
    for (domain, name), counts in sorted(table.items()):
        lines.append(f"{domain:<{domain_width}}{name:<{width}}"
                     + "".join(f"{counts.get(level, 0):>5}" for level in LEVELS)
                     + f"{sum(counts.values()):>7}")
    lines.append(f"{'total':<{domain_width + width}}"
                 + "".join(f"{levels.get(level, 0):>5}" for level in LEVELS) + f"{len(rows):>7}")
    return "\n".join(lines)
