"""A local command run on the worker for each prompt (a lab's GPU inference script, say).

Each call gets a fresh temporary directory holding `prompt.wav`. These tokens are replaced inside
every argument of the configured command (other braces are left alone):

    {input}        the prompt's WAV (mono 16-bit, at the model's input sample rate)
    {output}       where the command writes its spoken answer: any audio file format (WAV,
                   FLAC, MP3, OGG) whatever the name's extension, as the format is read from
                   the bytes
    {transcript}   an optional text file for what the answer says
    {prompt_id}    the prompt's id in its dataset
    {sample_rate}  the input sample rate in Hz

The command runs without a shell, in `working_dir`, with the worker's environment, and in its own
process group so that a timeout kills it together with everything it started.

What the exit tells us:
    0              success, when {output} is a non-empty file
    75             (EX_TEMPFAIL from sysexits.h) "try again later": a busy GPU, an out-of-memory
                   error that a retry may not hit; the task retries it
    anything else  a permanent failure, reported with the last lines of stderr
A line `model_version=...` printed on stdout (the last one wins) becomes the response's model
version.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections import deque
from pathlib import Path

from app.inference.adapters.base import (
    Adapter,
    Generated,
    PermanentError,
    PromptAudio,
    TransientError,
)
from app.inference.configs import CommandAdapter

EX_TEMPFAIL = 75
STDERR_LINES = 20
STDERR_CHARS = 4000
_PLACEHOLDER = re.compile(r"\{(input|output|transcript|prompt_id|sample_rate)\}")
_MODEL_VERSION = "model_version="


class Command(Adapter):
    kind = "command"
    config: CommandAdapter

    def generate(self, prompt: PromptAudio) -> Generated:
        with tempfile.TemporaryDirectory(prefix="s2s-arena-command-") as tmp:
            workdir = Path(tmp)
            paths = {name: workdir / filename for name, filename in (
                ("input", "prompt.wav"), ("output", "response.wav"),
                ("transcript", "transcript.txt"), ("stdout", "stdout.log"),
                ("stderr", "stderr.log"))}
            paths["input"].write_bytes(prompt.wav)
            values = {"input": str(paths["input"]), "output": str(paths["output"]),
                      "transcript": str(paths["transcript"]), "prompt_id": prompt.key,
                      "sample_rate": str(prompt.sample_rate)}
            # One pass per argument, so a value that itself looks like a token stays as it is.
            argv = [_PLACEHOLDER.sub(lambda match: values[match.group(1)], arg)
                    for arg in self.config.command]
            self.run(argv, paths["stdout"], paths["stderr"])
            output = paths["output"]
            if not output.is_file() or output.stat().st_size == 0:
                raise PermanentError(f"{argv[0]} exited 0 but wrote no audio to its {{output}} file"
                                     + _tail_note(paths["stderr"]))
            transcript = paths["transcript"]
            return Generated(
                audio=output.read_bytes(),
                transcript=(transcript.read_text(errors="replace").strip() or None
                            if transcript.is_file() else None),
                model_version=_model_version(paths["stdout"]),
            )

    def run(self, argv: list[str], stdout: Path, stderr: Path) -> None:
        """Run `argv` as the model's command is run: its own process group, killed whole at
        the time limit; a failure raised as TransientError (exit 75, the time limit) or
        PermanentError. Also how `s2s-arena dataset synthesize` runs a lab's own TTS."""
        returncode = self._run(argv, stdout, stderr)
        if returncode != 0:
            raise self._failure(argv[0], returncode, stderr)

    def _run(self, argv: list[str], stdout: Path, stderr: Path) -> int:
        """Run to the end or to the time limit. Output goes to files, not pipes, so that a
        grandchild holding them open can never keep us waiting."""
        timeout_s = self.config.timeout_s
        with stdout.open("wb") as out, stderr.open("wb") as err:
            try:
                process = subprocess.Popen(
                    argv, cwd=self.config.working_dir, env=dict(self.environ),
                    stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True,
                )
            except OSError as exc:  # no such program, not executable, no such working_dir
                raise PermanentError(f"could not start {argv[0]}: {exc}") from exc
            try:
                return process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise TransientError(f"{argv[0]} ran past its time limit of {timeout_s:g} s and "
                                     "was stopped") from None
            except BaseException:  # a Celery time limit or a worker shutting down
                _kill_group(process)
                raise

    def _failure(self, program: str, returncode: int, stderr: Path) -> Exception:
        if returncode < 0:
            return PermanentError(f"{program} was killed by {_signal_name(-returncode)}"
                                  + _tail_note(stderr))
        if returncode == EX_TEMPFAIL:
            return TransientError(f"{program} asked to be retried (exit {EX_TEMPFAIL})"
                                  + _tail_note(stderr))
        return PermanentError(f"{program} failed with exit code {returncode}" + _tail_note(stderr))


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the command's whole process group, then reap it. The leader is not reaped yet,
    so its pid (the group's id) cannot have been reused."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _tail_note(stderr: Path) -> str:
    """The last lines of stderr, which is where a traceback ends."""
    with stderr.open("rb") as file:
        file.seek(max(stderr.stat().st_size - STDERR_CHARS, 0))
        lines = deque(file.read().decode(errors="replace").splitlines(), maxlen=STDERR_LINES)
    tail = "\n".join(line for line in lines if line.strip())
    return f"; stderr ends with:\n{tail}" if tail else "; stderr is empty"


def _model_version(stdout: Path) -> str | None:
    version = None
    with stdout.open(errors="replace") as file:
        for line in file:
            if line.startswith(_MODEL_VERSION):
                version = line[len(_MODEL_VERSION):].strip() or None
    return version
