"""`s2s-arena dataset ...`: the argument parsers and what each command does."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from app.datasets.construction.limits import DEFAULT_CONCURRENCY, RemoteLimits
from app.datasets.construction.llm import LLMConfig


def add_commands(commands: argparse._SubParsersAction) -> None:
    dataset = commands.add_parser(
        "dataset", help="make new prompt sets (self-instruct, style mining, speech synthesis)",
        description="Make new spoken prompt sets. Each command writes every item it accepts to "
        "its output folder at once: run it again with the same arguments to resume.")
    group = dataset.add_subparsers(dest="dataset_command", required=True)

    augment = group.add_parser(
        "augment", help="grow seed scripts by self-instruction (S2S-Arena, Appendix A.2)",
        description="For each subset of the seeds, ask an LLM for new scripts in the seed "
        "schema, five random seeds at a time, until the subset holds --per-subset scripts. "
        "Writes OUT/scripts.jsonl (input for `dataset synthesize`) and OUT/drops.jsonl.")
    augment.add_argument("seeds", type=Path, help="JSONL: id, text, task, category, "
                         "task_description, language, text_cn, level (and domain)")
    augment.add_argument("--out", type=Path, required=True, help="output folder")
    augment.add_argument("--per-subset", type=int, default=50,
                         help="scripts to make per subset (default 50, as the paper)")
    augment.add_argument("--subset-by", choices=["category", "task"], default="category")
    augment.add_argument("--subset", action="append", default=None,
                         help="only this subset (repeatable)")
    augment.add_argument("--id-prefix", default="aug_", help='ids are PREFIX<subset>_<n>')
    augment.add_argument("--seed", type=int, default=0, help="random seed for the seeds shown")
    _llm_arguments(augment)
    augment.add_argument("--dry-run", action="store_true",
                         help="show the plan and the first request; send nothing")
    augment.set_defaults(run=_reporting(_augment))

    synth = group.add_parser(
        "synthesize", help="speak scripts with TTS, filter by word error rate, add noise",
        description="Speak each script with the TTS its style routes to (espeak-ng unless "
        "--tts-config says otherwise), optionally drop clips whose transcript strays from the "
        "script, optionally mix in background noise, and write OUT/manifest.jsonl and "
        "OUT/audio/: a folder that `s2s-arena import-dataset OUT` imports. Drops go to "
        "OUT/drops.jsonl with their reasons.")
    synth.add_argument("scripts", type=Path, help="JSONL: id, text, task, level, domain "
                       "(and category, language, text_cn, emotion, sarcasm, age, gender, pace, "
                       "style, voice, contrast_group, ...)")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--tts-config", type=Path, default=None,
                       help='JSON: {"default": {"kind": "espeak"}, "emotion": {"kind": '
                       '"openai", ...}, "age": {"kind": "command", "command": [...]}}')
    synth.add_argument("--domain", default=None, help="the domain of scripts that name none")
    synth.add_argument("--asr", choices=["openai", "gemini", "pocketsphinx"], default=None,
                       help="transcribe every clip (needed by --max-wer); pocketsphinx is "
                       "offline, English only")
    synth.add_argument("--asr-model", default=None,
                       help="default whisper-1 (openai) or gemini-2.5-flash")
    synth.add_argument("--asr-base-url", default=None)
    synth.add_argument("--asr-api-key-env", default=None)
    synth.add_argument("--max-wer", type=float, default=None,
                       help="drop clips whose word error rate is above this (0.2, say)")
    synth.add_argument("--noise", default=None,
                       help='"default" for synthetic noise (white, pink, brown, hum), or a '
                       "folder with one subfolder of audio files per category")
    synth.add_argument("--noise-category", default=None, help="always this category")
    synth.add_argument("--snr", type=float, default=10.0, help="signal-to-noise ratio in dB")
    _pace_argument(synth)
    synth.add_argument("--dry-run", action="store_true",
                       help="show what would be sent for the first scripts; send nothing")
    synth.set_defaults(run=_reporting(_synthesize))

    mine = group.add_parser(
        "mine-styles", help="mine style-contrast prompts (ParaS2S, §3.1 and Appendix A.3)",
        description="Ask an LLM for sentences whose words are neutral but whose right answer "
        "depends on how they are spoken, keep those that pass the neutrality, reasonability "
        "and paralinguistic relevance tests, and write OUT/scripts.jsonl: one script per "
        "(sentence, style), the two sharing a contrast group (input for `dataset "
        "synthesize`). Every test's verdict and reason is in OUT/checked.jsonl.")
    mine.add_argument("--category", choices=["emotion", "sarcasm", "age", "gender"],
                      required=True)
    mine.add_argument("--out", type=Path, required=True, help="output folder")
    mine.add_argument("--per-topic", type=int, default=100,
                      help="candidate sentences per topic and style pair (default 100, as the "
                      "paper)")
    mine.add_argument("--topic", action="append", default=None,
                      help="only this topic (repeatable; default: the paper's topics)")
    mine.add_argument("--pairs", default=None,
                      help='emotion pairs, "happy:sad,surprised:disgust" (default: five pairs '
                      "of opposite emotions)")
    mine.add_argument("--id-prefix", default="para_")
    mine.add_argument("--level", choices=["L1", "L2", "L3", "L4"], default="L4")
    mine.add_argument("--domain", default="social companionship")
    _llm_arguments(mine)
    mine.add_argument("--dry-run", action="store_true",
                      help="show the plan and the first prompts; send nothing")
    mine.set_defaults(run=_reporting(_mine_styles))


def _llm_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--llm", choices=["gemini", "openai"], default="gemini",
                        help="gemini (google-genai) or any OpenAI-compatible server")
    parser.add_argument("--model", default=None,
                        help="default gemini-2.5-flash, or gpt-4o for --llm openai")
    parser.add_argument("--base-url", default=None, help="default: the provider's own endpoint")
    parser.add_argument("--api-key-env", default=None,
                        help="environment variable holding the key (default GEMINI_API_KEY "
                        "or OPENAI_API_KEY)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--temperature", type=float, default=None)
    _pace_argument(parser)


def _pace_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requests-per-minute", type=float, default=None,
                        help="start at most this many requests a minute to each remote service, "
                        "across every run sharing ARENA_REDIS_URL (default: no limit)")
    parser.add_argument("--max-concurrency", type=int, default=DEFAULT_CONCURRENCY,
                        help="requests in flight at once to each remote service, across every "
                        f"run sharing ARENA_REDIS_URL (default {DEFAULT_CONCURRENCY})")


def _limits(args: argparse.Namespace) -> RemoteLimits:
    """The workers' limiter in Redis when ARENA_REDIS_URL is set, else this process's pacing."""
    from app.config import get_settings
    from app.errors import InvalidInput
    from app.redis_client import get_redis

    if args.max_concurrency < 1 or (args.requests_per_minute or 1) <= 0:
        raise InvalidInput("--max-concurrency and --requests-per-minute must be above 0")
    settings = get_settings()
    return RemoteLimits(args.requests_per_minute, args.max_concurrency,
                        client=get_redis if settings.redis_url else None,
                        lease_margin_s=settings.inference.lease_margin_s)


def _llm_config(args: argparse.Namespace) -> LLMConfig:
    return LLMConfig(kind=args.llm, model=args.model, base_url=args.base_url,
                     api_key_env=args.api_key_env, timeout_s=args.timeout,
                     temperature=args.temperature)


def _augment(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.datasets.construction import augment
    from app.datasets.construction.llm import StructuredLLM
    from app.errors import InvalidInput

    if args.per_subset < 1:
        raise InvalidInput("--per-subset must be at least 1")
    seeds = augment.load_seeds(args.seeds, args.subset_by)
    plan = augment.plan(seeds, target=args.per_subset, subset_by=args.subset_by,
                        id_prefix=args.id_prefix, only=args.subset)
    config = _llm_config(args)
    if args.dry_run:
        runner = augment.Augmenter(plan, None, args.out, seed=args.seed,
                                   policy=get_settings().inference)
        print(augment.dry_run(plan, runner.existing(), args.seed, config.describe()))
        return 0
    runner = augment.Augmenter(plan, StructuredLLM(config, os.environ), args.out,
                               seed=args.seed, policy=get_settings().inference,
                               limiter=_limits(args).for_service(config.describe(),
                                                                 config.timeout_s))
    outcome = runner.run()
    rows = runner.scripts.read()
    print(f"wrote {outcome.written} new scripts to {runner.scripts.path} "
          f"({len(rows)} in all); dropped {sum(outcome.dropped.values())}"
          + (f" ({', '.join(f'{n} {k}' for k, n in sorted(outcome.dropped.items()))}, "
             f"see {runner.drops.path})" if outcome.dropped else "")
          + f"; spent {outcome.usage.describe()}")
    print()
    print(augment.summary(rows, args.subset_by))
    if outcome.short:
        print("\nsubsets short of their target: " + ", ".join(
            f"{name} ({count}/{plan.target})" for name, count in outcome.short.items()),
            file=sys.stderr)
        return 1
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    import json

    from pydantic import ValidationError

    from app.config import get_settings
    from app.datasets.construction import synthesize, tts
    from app.datasets.construction.asr import ASR, ASRConfig
    from app.datasets.construction.noise import NoiseBank
    from app.errors import InvalidInput

    if args.max_wer is not None and args.asr is None:
        raise InvalidInput("--max-wer needs an ASR to transcribe the clips: add --asr openai "
                           "or --asr gemini")
    routes = tts.Routes()
    if args.tts_config is not None:
        try:
            routes = tts.Routes.model_validate(json.loads(args.tts_config.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInput(f"{args.tts_config}: cannot read it as JSON ({exc})") from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                 for e in exc.errors()[:5])
            raise InvalidInput(f"{args.tts_config}: {problems}") from None
    scripts = synthesize.load_scripts(args.scripts, args.domain)
    filters = synthesize.Filters(max_wer=args.max_wer, snr_db=args.snr)
    if args.asr:
        filters.asr = ASR(ASRConfig(kind=args.asr, model=args.asr_model,
                                    base_url=args.asr_base_url,
                                    api_key_env=args.asr_api_key_env), os.environ)
    if args.noise is not None:
        filters.noise = NoiseBank(None if args.noise == "default" else Path(args.noise),
                                  category=args.noise_category)
    settings = get_settings()
    runner = synthesize.Synthesizer(routes, filters, args.out, policy=settings.inference,
                                    environ=os.environ, audio=settings.audio,
                                    limits=_limits(args))
    if args.dry_run:
        print(runner.dry_run(scripts))
        return 0
    outcome = runner.run(scripts)
    kept = len(runner.manifest.read())
    print(f"kept {outcome.kept} new clips ({kept} in {runner.manifest.path}); dropped "
          f"{sum(outcome.dropped.values())}"
          + (f" ({', '.join(f'{n} {k}' for k, n in sorted(outcome.dropped.items()))}, see "
             f"{runner.drops.path})" if outcome.dropped else "")
          + f"; spent {outcome.usage.describe()}")
    if kept:
        print(f"import it with: s2s-arena import-dataset {args.out} --name NAME (the dataset's "
              f"name; without --name it is {args.out.resolve().name!r})")
    return 0


def _mine_styles(args: argparse.Namespace) -> int:
    from app.config import get_settings
    from app.datasets.construction import styles
    from app.datasets.construction.llm import StructuredLLM
    from app.errors import InvalidInput

    if args.per_topic < 1:
        raise InvalidInput("--per-topic must be at least 1")
    pairs = styles.parse_pairs(args.pairs)
    if pairs and args.category != "emotion":
        raise InvalidInput("--pairs is for --category emotion; the other categories have "
                           "one pair each (sincere:sarcastic, adult:child, male:female)")
    config = _llm_config(args)
    options = dict(per_topic=args.per_topic, policy=get_settings().inference, topics=args.topic,
                   pairs=pairs, id_prefix=args.id_prefix, level=args.level, domain=args.domain)
    if args.dry_run:
        print(styles.Miner(args.category, None, args.out, **options).dry_run())
        return 0
    miner = styles.Miner(args.category, StructuredLLM(config, os.environ), args.out, **options,
                         limiter=_limits(args).for_service(config.describe(), config.timeout_s))
    outcome = miner.run()
    print(f"checked {sum(outcome.failed.values()) + outcome.kept} new sentences: kept "
          f"{outcome.kept}"
          + (f", rejected {', '.join(f'{n} by {k}' for k, n in sorted(outcome.failed.items()))}"
             if outcome.failed else "")
          + f"; {len(miner.scripts.read())} scripts in {miner.scripts.path}; spent "
          f"{outcome.usage.describe()}")
    return 0


def _reporting(command: Callable[[argparse.Namespace], int]
               ) -> Callable[[argparse.Namespace], int]:
    """The command, with a remote call that failed for good reported rather than raised (bad
    input is reported by the `s2s-arena` entry point itself)."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from app.inference.adapters.base import AdapterError

        try:
            return command(args)
        except AdapterError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("\nstopped; everything accepted so far is on disk: run the same command again "
                  "to carry on", file=sys.stderr)
            return 130

    return run
