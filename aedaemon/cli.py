"""`aedaemon` command line: run, render, process, info, addresses (+ corpus/train/evaluate with [train]).

User errors (AedaemonError) print one line and exit with code 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

from . import __version__
from .errors import AedaemonError

DEFAULT_MODEL = "models/default"


def _default_models_dir() -> Path:
    return Path(os.environ.get("AEDAEMON_MODELS_DIR", "models"))


def _finite(kind):
    def conv(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a valid {kind.__name__}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"'{text}' is not a finite number")
        return v

    return conv


def _latent_list(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None
    if not vals or not all(math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of finite numbers")
    return vals


def _chroma_arg(text: str):
    try:
        return int(text)
    except ValueError:
        return text


# ---- render ------------------------------------------------------------------------------


def _int_at_least(low: int):
    """argparse type: a whole number >= low."""

    def conv(text: str) -> int:
        v = _finite(int)(text)
        if v < low:
            raise argparse.ArgumentTypeError(f"'{text}' must be a whole number >= {low}")
        return v

    return conv


def add_render_parser(sub) -> None:
    p = sub.add_parser(
        "render",
        help="render offline to a sound file",
        description="Render the synthesizer offline to a sound file (WAV, FLAC, AIFF, OGG or MP3, "
        "from the extension of --out). Settings are applied through the OSC address table; "
        "--score schedules timed OSC messages from a JSON file.",
    )
    p.add_argument("--model", default=DEFAULT_MODEL, help="model folder or name (default: %(default)s)")
    p.add_argument("--models-dir", type=Path, default=None, help="where model names are looked up")
    p.add_argument("--latent", type=_latent_list, help="comma-separated latent values, one per unit")
    p.add_argument("--chroma", type=_chroma_arg, help="pitch class: 0..11 or a name (C, C#, Db, ... B)")
    p.add_argument("--transpose", type=_finite(float), help="semitones, -24..24")
    p.add_argument("--freq-shift", type=_finite(int), help="circular frequency shift in bins")
    p.add_argument("--gain", type=_finite(float), help="linear output gain, 0..2")
    p.add_argument("--glide", type=_finite(float), help="glide time in seconds")
    p.add_argument("--tilt", type=_finite(float), help="spectral tilt, dB/octave around 1 kHz")
    p.add_argument("--seconds", type=_finite(float), default=4.0, help="length (default: %(default)s)")
    p.add_argument("--phase", choices=("rtpghi", "noise", "canne"), default="rtpghi", help="phase method")
    p.add_argument("--precision", choices=("auto", "float32", "int8"), default="auto",
                   help="decoder: auto (int8 when the model has one), float32 (the reference), int8")
    p.add_argument("--hop", type=_int_at_least(1),
                   help="synthesis hop in samples: a divisor of n_fft, at most n_fft/2 (default: the model's)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed for initial phase, >= 0")
    p.add_argument("--score", type=Path, help="JSON list of {time, address, args} events")
    p.add_argument("--out", default="out.wav",
                   help="output file; .wav, .flac, .aiff/.aif, .ogg or .mp3 (default: %(default)s)")
    p.add_argument("--subtype", type=str.upper, choices=("PCM_16", "PCM_24", "FLOAT"),
                   help="sample format: PCM_16 (default), PCM_24 (both dithered) or FLOAT; "
                   "OGG and MP3 take none")
    p.set_defaults(func=cmd_render)


def _render_settings(args: argparse.Namespace) -> list[tuple[str, list]]:
    """The render flags as messages for the address table, ending with /play."""
    settings: list[tuple[str, list]] = []
    if args.glide is not None:
        settings.append(("/glide", [args.glide]))
    if args.latent is not None:
        settings.append(("/latent", args.latent))
    if args.chroma is not None:
        settings.append(("/chroma", [args.chroma]))
    for flag, address in (("transpose", "/transpose"), ("freq_shift", "/freq_shift"), ("gain", "/gain"), ("tilt", "/tilt")):
        if getattr(args, flag) is not None:
            settings.append((address, [getattr(args, flag)]))
    settings.append(("/play", [1]))
    return settings


def _warn_unheard(late: Sequence, seconds: float) -> None:
    """One stderr line for score events at or after the end (the render still succeeds)."""
    if late:
        first = min(ev.time for ev in late)
        print(f"aedaemon: warning: {len(late)} score event{'s' if len(late) != 1 else ''} at or after the end "
              f"(--seconds {seconds:g}) not rendered, the first at {first:g} s", file=sys.stderr)


def cmd_render(args: argparse.Namespace) -> int:
    from .engine import Engine, check_hop
    from .model import load_bundle
    from .render import apply_settings, check_output_path, events_after, load_score, output_format, render_to_file

    if not 0 < args.seconds <= 3600:
        raise AedaemonError(f"--seconds {args.seconds:g} is out of range (0, 3600]")
    out = check_output_path(args.out)
    fmt = output_format(out, args.subtype)
    events = load_score(args.score) if args.score else None
    bundle = load_bundle(args.model, args.models_dir or _default_models_dir(), precision=args.precision)
    hop = bundle.meta.hop if args.hop is None else args.hop
    check_hop(bundle.meta.n_fft, hop, "--hop")
    engine = Engine(bundle, hop=hop, phase=args.phase, seed=args.seed)
    apply_settings(engine, _render_settings(args))
    _warn_unheard(events_after(events or (), args.seconds, engine.sample_rate), args.seconds)
    figures = render_to_file(engine, args.seconds, out, events, fmt)
    print(
        f"wrote {out}: {figures['seconds']:.2f} s at {engine.sample_rate} Hz ({fmt.format} {fmt.subtype}), "
        f"{figures['wall']:.2f} s wall ({figures['realtime_factor']:.0f}x real time), "
        f"{figures['decodes']} decodes, phase {args.phase}, hop {engine.hop}",
        file=sys.stderr,
    )
    return 0


# ---- process (the effect, offline) -------------------------------------------------------------


def add_process_parser(sub) -> None:
    p = sub.add_parser(
        "process",
        help="play a sound file through the autoencoder (the effect, offline)",
        description="Play a sound file through the model offline (the effect mode, ANNe's file mode): "
        "each frame is normalised, encoded, its latents controlled "
        "(((1 - morph) x encoded + morph x --latent) x --scale, --mute), decoded, put back at its "
        "level, shaped and resynthesised with the input's own phase (default) or RTPGHI, then mixed "
        "dry/wet. IN: any file libsndfile reads, any rate and channel count (mixed to mono, "
        "resampled to the model's rate). The output is aligned with the input (latency 0). "
        "The model needs an encoder.onnx.",
    )  # fmt: skip
    p.add_argument("input", metavar="IN", help="the sound file to process (WAV, FLAC, AIFF, ...)")
    p.add_argument("--out", default="out.wav",
                   help="output file; .wav, .flac, .aiff/.aif, .ogg or .mp3 (default: %(default)s)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="model folder or name (default: %(default)s)")
    p.add_argument("--models-dir", type=Path, default=None, help="where model names are looked up")
    p.add_argument("--hop", type=_int_at_least(1),
                   help="analysis/synthesis hop in samples: a divisor of n_fft, at most n_fft/2 (default: the model's)")
    p.add_argument("--phase", choices=("input", "rtpghi"), default="input",
                   help="the input's own phase (default) or RTPGHI from the new magnitude")
    p.add_argument("--mix", type=_finite(float), default=1.0, help="dry/wet, 0 (input) .. 1 (resynthesis, default)")
    p.add_argument("--morph", type=_finite(float), default=0.0,
                   help="0 = the input's own latents (default), 1 = the --latent values; between: a blend")
    p.add_argument("--latent", type=_latent_list, help="comma-separated latent values that --morph blends towards "
                   "(default: the model's default latent)")
    p.add_argument("--scale", action="append", default=[], metavar="UNIT=VALUE",
                   help="scale a unit's activation, 0..4 (e.g. --scale 3=0.5; repeat or comma-separate)")
    p.add_argument("--mute", action="append", default=[], metavar="UNITS",
                   help="units whose activation is 0 (e.g. --mute 2,5)")
    p.add_argument("--chroma", type=_chroma_arg,
                   help="hold the decoder's pitch class (0..11 or a name: C, C#, Db, ... B); "
                   "default: each frame's own (auto)")
    p.add_argument("--transpose", type=_finite(float), default=0.0, help="semitones, -24..24")
    p.add_argument("--freq-shift", type=_finite(int), default=0, help="circular frequency shift in bins")
    p.add_argument("--tilt", type=_finite(float), default=0.0, help="spectral tilt, dB/octave around 1 kHz")
    p.add_argument("--gain", type=_finite(float), default=1.0, help="linear output gain, 0..2")
    p.add_argument("--precision", choices=("auto", "float32", "int8"), default="float32",
                   help="decoder: float32 (the reference, default: batched, int8 is no faster), auto, int8")
    p.add_argument("--seed", type=_int_at_least(0), default=0, help="random seed for RTPGHI's initial phase")
    p.add_argument("--score", type=Path,
                   help="JSON list of {time, address, args} events changing the controls over the file: "
                   "/latent, /scale/N, /mute/N, /chroma, /transpose, /freq_shift, /tilt, /gain, /reset "
                   "(time in seconds of the input)")
    p.add_argument("--threads", type=_int_at_least(1), default=1, choices=(1, 2),
                   help="2: analyse and encode the next block in a second thread while this one decodes (default: 1)")
    p.add_argument("--subtype", type=str.upper, choices=("PCM_16", "PCM_24", "FLOAT"),
                   help="sample format: PCM_16 (default), PCM_24 (both dithered) or FLOAT; OGG and MP3 take none")
    p.set_defaults(func=cmd_process)


def _effect_settings(args: argparse.Namespace, latent_size: int):
    from .effect import EffectSettings, unit_values
    from .errors import ParameterError

    def number(text: str, item: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise ParameterError(f"--scale '{item}': '{text}' is not a number") from None
        if not math.isfinite(v):
            raise ParameterError(f"--scale '{item}': '{text}' is not a finite number")
        return v

    scales = unit_values(args.scale, latent_size, "--scale", number)
    scale = tuple(float(scales.get(i, 1.0)) for i in range(latent_size)) if scales else None
    muted: set[int] = set()
    for text in args.mute:
        for item in (t.strip() for t in str(text).split(",")):
            if not item:
                continue
            try:
                i = int(item)
            except ValueError:
                raise ParameterError(f"--mute '{item}': expected unit numbers, e.g. --mute 2,5") from None
            if not 0 <= i < latent_size:
                raise ParameterError(f"--mute {i}: unit out of range 0..{latent_size - 1}")
            muted.add(i)
    chroma = None
    if args.chroma is not None and str(args.chroma).lower() != "auto":
        from .protocol import parse_chroma

        try:
            chroma = parse_chroma([args.chroma])
        except ParameterError as exc:
            raise ParameterError(f"--chroma: {exc}") from None
    return EffectSettings(
        mix=args.mix, morph=args.morph, latent=tuple(args.latent) if args.latent is not None else None,
        scale=scale, mute=tuple(i in muted for i in range(latent_size)) if muted else None, chroma=chroma,
        transpose=args.transpose, freq_shift=args.freq_shift, tilt=args.tilt, gain=args.gain,
        phase=args.phase, hop=args.hop, seed=args.seed,
    )  # fmt: skip


EFFECT_SCORE_ADDRESSES = ("latent", "scale", "mute", "chroma", "transpose", "freq_shift", "tilt", "gain", "reset")


def _effect_schedule(events, bundle, base):
    """A score's events as (input sample, settings) changes: each group of events at one time is
    applied through the OSC address table (its checks, clamps, patterns and /reset) to the
    controls in force, as the same messages would change the synthesizer's state."""
    import dataclasses

    from .engine import Engine, one_hot
    from .errors import ParameterError, ScoreError
    from .protocol import OfflineServices, dispatch
    from .render import sample_time

    engine = Engine(bundle, hop=base.hop or bundle.meta.hop)
    n = bundle.meta.latent_size
    engine.update(
        latent=tuple(base.latent) if base.latent is not None else tuple(bundle.meta.default_latent),
        scale=tuple(base.scale) if base.scale is not None else (1.0,) * n,
        mute=tuple(base.mute) if base.mute is not None else (False,) * n,
        chroma=tuple(base.chroma) if base.chroma is not None else one_hot(0),
        transpose=base.transpose, freq_shift=base.freq_shift, tilt=base.tilt, gain=base.gain,
    )  # fmt: skip
    held = base.chroma is not None
    services = OfflineServices()
    schedule = []
    order = sorted(range(len(events)), key=lambda k: events[k].time)
    i = 0
    while i < len(order):
        at = sample_time(events[order[i]].time, bundle.meta.sample_rate)
        while i < len(order) and sample_time(events[order[i]].time, bundle.meta.sample_rate) == at:
            k = order[i]
            ev = events[k]
            head = ev.address.strip("/").split("/")[0]
            if head not in EFFECT_SCORE_ADDRESSES:
                raise ScoreError(f"score event {k} ({ev.address} at {ev.time:g} s): not an effect control "
                                 f"(aedaemon process takes /{', /'.join(EFFECT_SCORE_ADDRESSES)})")
            before = engine.targets.chroma
            try:
                dispatch(ev.address, ev.args, engine=engine, services=services)
            except ParameterError as exc:
                raise ScoreError(f"score event {k} ({ev.address} at {ev.time:g} s): {exc}") from None
            held = held or head == "chroma" or engine.targets.chroma != before
            i += 1
        t = engine.targets
        schedule.append((at, dataclasses.replace(
            base, latent=tuple(t.latent), scale=tuple(t.scale), mute=tuple(t.mute),
            chroma=tuple(t.chroma) if held else None, transpose=float(t.transpose), freq_shift=int(t.freq_shift),
            tilt=float(t.tilt), gain=float(t.gain),
        )))  # fmt: skip
    return schedule


def cmd_process(args: argparse.Namespace) -> int:
    from .effect import process_file
    from .model import load_bundle
    from .render import check_output_path, output_format

    out = check_output_path(args.out)
    fmt = output_format(out, args.subtype)
    src = Path(args.input)
    if not src.exists():
        raise AedaemonError(f"{src}: no such file")
    bundle = load_bundle(args.model, args.models_dir or _default_models_dir(), precision=args.precision)
    settings = _effect_settings(args, bundle.meta.latent_size)
    schedule = ()
    if args.score:
        from .effect import EffectChain
        from .render import load_score

        EffectChain(bundle, settings)  # the flags are refused first, as without a score
        schedule = _effect_schedule(load_score(args.score), bundle, settings)
    stats, info = process_file(bundle, src, out, settings, fmt, threads=args.threads, schedule=schedule)
    resampled = f", resampled from {info.sample_rate} Hz" if info.sample_rate != bundle.meta.sample_rate else ""
    mixed = f", {info.channels} channels mixed to mono" if info.channels > 1 else ""
    print(
        f"wrote {out}: {stats.seconds:.2f} s at {bundle.meta.sample_rate} Hz ({fmt.format} {fmt.subtype}){resampled}{mixed}, "
        f"{stats.wall:.2f} s wall ({stats.realtime_factor:.0f}x real time), {stats.frames} frames, "
        f"{stats.encodes} encoded, {stats.decodes} decoded, {stats.silent} silent, phase {args.phase}, "
        f"hop {settings.hop or bundle.meta.hop}, latency 0 (aligned)",
        file=sys.stderr,
    )
    if stats.over_full_scale:
        print(f"aedaemon: warning: {stats.over_full_scale} samples were above full scale: the output went through "
              "the soft limiter (lower --gain or --scale)", file=sys.stderr)
    return 0


# ---- info, addresses -----------------------------------------------------------------------


def add_info_parser(sub) -> None:
    p = sub.add_parser("info", help="print a model bundle's metadata", description="Validate a model bundle and print its metadata.")
    p.add_argument("model", help="model folder or name")
    p.add_argument("--models-dir", type=Path, default=None)
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from .model import describe, load_bundle

    bundle = load_bundle(args.model, args.models_dir or _default_models_dir())
    print(describe(bundle.meta, bundle.path))
    return 0


def add_addresses_parser(sub) -> None:
    p = sub.add_parser("addresses", help="print the OSC address table (Markdown)")
    p.set_defaults(func=cmd_addresses)


def cmd_addresses(_args: argparse.Namespace) -> int:
    from .protocol import address_table_markdown

    print(address_table_markdown())
    return 0


def add_devices_parser(sub) -> None:
    p = sub.add_parser(
        "devices", help="list audio outputs and MIDI ports",
        description="The audio output devices PortAudio sees (for `device =` / --device) and the "
        "MIDI ports of JACK and ALSA (for the [midi] port pattern).",
    )  # fmt: skip
    p.set_defaults(func=cmd_devices)


def cmd_devices(_args: argparse.Namespace) -> int:
    from .audio import list_output_devices
    from .devicechild import describe_devices

    try:
        devices = list_output_devices()
    except Exception as exc:  # noqa: BLE001 - PortAudio missing or broken: say so, list MIDI anyway
        print(f"audio outputs: cannot ask PortAudio ({exc})")
    else:
        print("audio outputs:" if devices else describe_devices(devices))
        for d in devices:
            print(f"  [{d['index']}] {d['name']}  ({d['api']}, {d['channels']} ch, {d['default_rate']:g} Hz)")
    try:
        from .midi.bridge import list_ports

        systems = list_ports()
    except Exception as exc:  # noqa: BLE001
        print(f"MIDI: cannot ask rtmidi ({exc})")
        return 0
    if not systems:
        print("MIDI: no MIDI system answers (no JACK server, no ALSA sequencer)")
    for api, ports in systems.items():
        print(f"MIDI ({api}):")
        for kind in ("inputs", "outputs"):
            print(f"  {kind}: " + (", ".join(f"'{p}'" for p in ports[kind]) or "none"))
    return 0


# ---- wiring ------------------------------------------------------------------------------


def _optional_module(name: str):
    """Import a sibling module if it is part of this installation (its own errors propagate)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(f"aedaemon.{name}") is None:
        return None
    return importlib.import_module(f"aedaemon.{name}")


def _add_optional(sub) -> None:
    """Subcommands that live in other modules: the daemon, the MIDI bridge, training."""
    daemon = _optional_module("daemon")
    if daemon is not None and hasattr(daemon, "add_run_arguments"):
        p = sub.add_parser("run", help="run the synthesis daemon", description="Run the OSC-controlled synthesis daemon.")
        daemon.add_run_arguments(p)
        p.set_defaults(func=daemon.main)
    for name in ("midi", "train.commands"):
        module = _optional_module(name)
        if module is not None and hasattr(module, "register"):
            module.register(sub)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage is one `--help` away)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aedaemon", description="Neural timbre synthesizer daemon, OSC and MIDI.")
    parser.add_argument("--version", action="version", version=f"aedaemon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_render_parser(sub)
    add_process_parser(sub)
    add_info_parser(sub)
    add_addresses_parser(sub)
    add_devices_parser(sub)
    _add_optional(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except AedaemonError as exc:
        print(f"aedaemon: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
