"""Reading judges' replies, and the prompts they reply to (quoted from the papers)."""

import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from app.judges import prompts
from app.judges.parsing import parse_pairwise, parse_score

PAPERS = Path(__file__).resolve().parents[2].parent / "shared" / "papers"


# --- pairwise -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "winner"), [
    ("First one wins", "first"),
    ("Second one wins.", "second"),
    ("**First one wins.**", "first"),
    ("*second ONE wins*!", "second"),
    ("__First one wins__", "first"),
    ("Having listened to both, the SECOND one wins because it answers warmly.", "second"),
    ("The first response wins.", "first"),
    ("Both follow the instruction.\n\nFirst one wins.\n", "first"),
    ('```json\n{"winner": "second", "reason": "warmer tone"}\n```', "second"),
    ('{"winner": "first", "reason": "clearer"}', "first"),
    ('Here is my verdict: {"winner": "First"} as asked.', "first"),
    ('{"winner": "1"}', "first"),
    ('{"winner": 2}', "second"),
    ('{"winner": "A"}', "first"),
    ('{"winner": "b"}', "second"),
    ('{"winner": "Response 1"}', "first"),
    ('{"Winner": "the second response"}', "second"),
    ('{"winner": "output audio 2"}', "second"),
    ('{"winner": "Second one wins."}', "second"),
    ('```\n{"winner": "first", "reason": "The second one is noisy."}\n```', "first"),
    ("Winner: Response B", "second"),
    ("The winner is the first response.", "first"),
    # naming both, with a clear final answer line
    ("First one wins on content.\nBut the tone matters more here.\n**Second one wins.**", "second"),
    ("You asked me to reply 'First one wins' or 'Second one wins'.\nFinal answer: First one wins",
     "first"),
    ("Second one wins on speed, first one wins on warmth.\nVerdict: second", "second"),
])
def test_reads_the_winner(reply: str, winner: str) -> None:
    verdict = parse_pairwise(reply)
    assert verdict.winner == winner, verdict
    assert verdict.valid and verdict.invalid is None


@pytest.mark.parametrize(("reply", "why"), [
    (None, "empty"),
    ("", "empty"),
    ("   \n ", "empty"),
    ("Both responses are fine.", "neither"),
    ("I cannot decide.", "neither"),
    ("First one wins ... no, Second one wins", "both"),
    ("First one wins. Second one wins.", "both"),
    ("Second one wins.\nThough the first one wins on audio quality.", "both"),
    ("I would not say first one wins.", "negated"),
    ('{"winner": "tie", "reason": "equally good"}', "not understood"),
    ('{"winner": "both"}', "not understood"),
    ('{"winner": true}', "not understood"),
    ('{"winner": 3}', "not understood"),
    ('{"winner": "first"} {"winner": "second"}', "different winners"),
    ('{"winner": "first"}\nActually, Second one wins.', "contradicted"),
])
def test_never_guesses(reply: str | None, why: str) -> None:
    verdict = parse_pairwise(reply)
    assert verdict.winner is None and not verdict.valid
    assert why in verdict.invalid


def test_keeps_the_reason() -> None:
    assert parse_pairwise('{"winner": "second", "reason": " Warmer. "}').reason == "Warmer."
    assert parse_pairwise("**First one wins.**").reason is None
    reply = "First one wins: it follows the instruction."
    assert parse_pairwise(reply).reason == reply


PHRASES = {"first": "First one wins", "second": "Second one wins"}
NEGATION = re.compile(r"\b(?:no|not|never|neither|nor)\b|n't")


def _plain(text: str) -> str:
    return re.sub(r"[*_`#>~]", "", text.casefold())


@given(
    side=st.sampled_from(["first", "second"]),
    before=st.text(max_size=80),
    after=st.text(max_size=80),
    case=st.sampled_from([str, str.upper, str.lower, str.title]),
    emphasis=st.sampled_from(["", "*", "**", "__", "`"]),
    stop=st.sampled_from(["", ".", "!", "'", '"']),
)
def test_a_canonical_phrase_in_any_text(side, before, after, case, emphasis, stop) -> None:
    """Either phrase, dressed any way, inside any text that does not name the other side (nor
    negate, nor carry a "winner" key), reads as that side."""
    other = "second" if side == "first" else "first"
    around = _plain(f"{before} {after}")
    assume(other not in around and "winner" not in around and not NEGATION.search(around))
    reply = f"{before} {emphasis}{case(PHRASES[side])}{stop}{emphasis} {after}"
    assert parse_pairwise(reply).winner == side


# --- score ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("reply", "score", "reason"), [
    ("The reason is it shares the joy; The score is 5 .", 5, "it shares the joy"),
    ("The reason is flat tone to a sad user; The score is 2.", 2, "flat tone to a sad user"),
    ('{"score": 4, "reason": "good content, neutral tone"}', 4, "good content, neutral tone"),
    ('```json\n{"reason": "ok", "score": 3}\n```', 3, "ok"),
    ('{"score": "5"}', 5, None),
    ('{"score": 4.0}', 4, None),
    ('{"rating": "4/5"}', 4, None),
    ("Score: 4", 4, None),
    ("**Score:** 3", 3, None),
    ("score = 1", 1, None),
    ("4/5", 4, None),
    ("Rating: 4 out of 5", 4, None),
    ("I'd give it a score of 2 out of 5.", 2, None),
    ("Reason: cheerful reply to a sad user\nScore: 1", 1, "cheerful reply to a sad user"),
    ("Score: 4/5. The score is 4.", 4, None),
    ("3", 3, None),
])
def test_reads_the_score(reply: str, score: int, reason: str | None) -> None:
    verdict = parse_score(reply)
    assert (verdict.score, verdict.reason, verdict.invalid) == (score, reason, None)


@pytest.mark.parametrize(("reply", "why"), [
    (None, "empty"),
    ("", "empty"),
    ("A warm and fitting reply.", "no score"),
    ("The reason is _; The score is _ .", "no score"),
    ("Score: 0", "out of range"),
    ("Score: 6", "out of range"),
    ('{"score": 7}', "out of range"),
    ("10", "out of range"),
    ("Score: 3.5", "whole number"),
    ('{"score": 4.5}', "whole number"),
    ('{"score": "high"}', "not a number"),
    ('{"score": null}', "not a number"),
    ('{"score": true}', "not a number"),
    ("Score: 8/10", "another scale"),
    ('{"score": "8/10"}', "another scale"),
    ("Score: 4. On reflection, score: 2.", "several"),
    ("Content 4/5, tone 2/5.", "several"),
    ('{"score": 4} {"score": 2}', "different scores"),
    ('{"score": 4}\nScore: 2', "contradicted"),
])
def test_invalid_scores(reply: str | None, why: str) -> None:
    verdict = parse_score(reply)
    assert verdict.score is None and not verdict.valid
    assert why in verdict.invalid


# A reason as a judge writes one: printable text (letters, marks, punctuation, symbols, numbers
# that are no digits, spaces) without the format's own separators, and no edge spaces.
REASONS = st.text(st.one_of(st.characters(categories=("L", "M", "Nl", "No", "P", "S"),
                                          exclude_characters=";{}"), st.just(" ")),
                  min_size=1, max_size=60).map(str.strip).filter(bool)


@given(score=st.integers(1, 5), reason=REASONS)
def test_the_papers_answer_format(score: int, reason: str) -> None:
    """Any reply in the A.11.5 format "The reason is _; The score is _ ." reads back."""
    assume(reason.isprintable())
    verdict = parse_score(f"The reason is {reason}; The score is {score} .")
    assert (verdict.score, verdict.reason) == (score, reason)


# --- prompts --------------------------------------------------------------------------------------

def _paper_text(text: str) -> str:
    """Text as the extracted paper prints it, minus extraction artefacts: listing line numbers,
    code fences, markdown marks and escapes, line breaks."""
    text = re.sub(r"(?m)^\s*\d{4} ", "", text).replace('PROMPT = ""', "")
    return " ".join(re.sub(r"```|[#*\\]", "", text).split())


@pytest.mark.skipif(not PAPERS.is_dir(), reason="the papers are not beside the repository")
@pytest.mark.parametrize(("paper", "quoted"), [
    ("s2s-arena.txt", prompts.TEXT_CONTENT_INSTRUCTION),
    ("s2s-arena.txt", prompts.AUDIO_EVALUATION_PROMPT),
    ("paras2s.txt", prompts.SCORING_GUIDELINE),
    ("paras2s.txt", "The information of the user:"),
    ("paras2s.txt", "Here is the information of the agent:"),
    ("paras2s.txt", prompts.SCORE_ANSWER),
])
def test_prompts_quote_the_papers_verbatim(paper: str, quoted: str) -> None:
    assert _paper_text(quoted) in _paper_text((PAPERS / paper).read_text())


def test_the_pairwise_prompts_hold_the_three_clips_in_order() -> None:
    for prompt in (prompts.PAIRWISE_PROMPT, prompts.PAIRWISE_JSON_PROMPT):
        parts = prompt.parts()
        assert [p for p in parts if isinstance(p, prompts.AudioSlot)] == list(prompts.AudioSlot)
        assert "".join(p if isinstance(p, str) else p.value for p in parts) == prompt.evaluation
        assert prompt.instruction == "Please follow the audio instruction to generate the response."
    assert "'First one wins' or 'Second one wins.'" in prompts.PAIRWISE_PROMPT.evaluation
    json_prompt = prompts.PAIRWISE_JSON_PROMPT.evaluation
    assert '"winner"' in json_prompt and "First one wins" not in json_prompt
    # Apart from the answer sentence, the JSON variant is the paper's prompt.
    assert json_prompt.replace(prompts.JSON_ANSWER, prompts.PHRASE_ANSWER) == \
        prompts.AUDIO_EVALUATION_PROMPT


def test_every_prompt_has_its_own_version() -> None:
    assert set(prompts.PROMPTS) == {"s2s-arena-a5-v1", "s2s-arena-a5-json-v1", "paras2s-a11.5-v1",
                                    "paras2s-a11.5-json-v1", "arena-tone-caption-v1"}
    assert all(prompts.PROMPTS[version].version == version for version in prompts.PROMPTS)


def test_the_score_prompt_fills_every_field_as_given() -> None:
    text = prompts.render_score_prompt(
        prompt_transcript='Oh great, {another} $5 fee.', sarcasm="sarcastic", emotion="angry",
        response_transcript="Sorry about that fee!", response_caption="calm, apologetic, slow")
    assert text.startswith("You are a human dialogue expert.")
    assert "Transcription: Oh great, {another} $5 fee.\nEmotion: angry\nSarcasm: sarcastic\n" \
           "Age: unknown\nGender: unknown" in text
    assert "Transcription: Sorry about that fee!\nTone: calm, apologetic, slow" in text
    assert text.endswith("The reason is _; The score is _ .")
    assert "$" not in text.replace("$5", "")
    json_text = prompts.render_score_prompt(prompt=prompts.SCORE_JSON_PROMPT, prompt_transcript="a",
                                            response_transcript="b", response_caption="c")
    assert json_text.endswith('{"reason": "...", "score": N}, where N is 1, 2, 3, 4 or 5.')


def test_rendering_refuses_missing_or_unknown_fields() -> None:
    with pytest.raises(ValueError, match="needs fields"):
        prompts.SCORE_PROMPT.render(prompt_transcript="a")
    with pytest.raises(ValueError, match="has no fields"):
        prompts.CAPTION_PROMPT.render(transcript="a")
    assert prompts.CAPTION_PROMPT.render().startswith("Describe the speaking style")


def test_replies_to_the_json_prompts_read_back() -> None:
    """What the JSON prompts ask for is what the parsers read."""
    assert parse_pairwise('{"winner": "second", "reason": "..."}').winner == "second"
    assert parse_score('{"reason": "...", "score": 3}').score == 3


@given(st.text(max_size=300))
def test_any_reply_gives_a_verdict_or_a_reason_why_not(reply: str) -> None:
    for verdict in (parse_pairwise(reply), parse_score(reply)):
        assert verdict.valid != bool(verdict.invalid)
