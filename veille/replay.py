"""`veille replay`: capture files through the live pipeline, events to stdout, a file or a collector."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import tomllib
from dataclasses import replace
from typing import Any, TextIO

from agent.output import EveWriter, JsonlWriter, TableWriter
from agent.pipeline import Pipeline, PipelineConfig, replay_frames, settle_gc
from capture.errors import CaptureFileError, VeilleError


def build_config(args: argparse.Namespace) -> PipelineConfig:
    cfg = PipelineConfig()
    if args.stream_depth:
        cfg.flows = replace(cfg.flows, stream_depth=args.stream_depth)
    cfg.encryption_handling = args.encryption_handling
    cfg.bypass = not args.no_bypass
    cfg.fingerprints = not args.no_fingerprints
    if args.p0f:
        if not os.path.isfile(args.p0f):
            raise FileNotFoundError(errno.ENOENT, "no such p0f database", args.p0f)
        cfg.p0f_path = args.p0f
    cfg.inventory = not args.no_inventory
    cfg.rule_files = list(args.rules)
    variables: dict[str, str] = {}
    if args.home_net:
        variables["HOME_NET"] = args.home_net
    for v in args.var:
        name, _, value = v.partition("=")
        variables[name.lstrip("$")] = value
    cfg.variables = variables
    cfg.ioc_files = list(args.ioc)
    if args.detections:
        try:
            with open(args.detections, "rb") as f:
                doc = tomllib.load(f)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{args.detections}: not valid TOML: {e}") from None
        cfg.detections = doc.get("detections", doc)
    return cfg


def add_privacy_arguments(p: argparse.ArgumentParser) -> None:
    """`veille replay` options for the site privacy filter (agent/privacy.py, docs/privacy.md)."""
    from agent.privacy import PROFILES, SWITCHES

    p.add_argument("--privacy-profile", choices=PROFILES, default=None, help="apply a site privacy profile")
    p.add_argument("--privacy-key-file", metavar="FILE", help="site pseudonym key (pseudonymised, minimal)")
    p.add_argument("--privacy-map", metavar="FILE", help="record pseudonym -> value here for `veille agent reveal`")
    p.add_argument("--privacy-off", action="append", default=[], choices=SWITCHES, help="drop one kind of text")


def privacy_from_args(args: argparse.Namespace) -> Any:
    """The `agent.reveal.SitePrivacy` the options ask for, or None; raises `PrivacyError` naming the option."""
    profile = getattr(args, "privacy_profile", None)
    off = getattr(args, "privacy_off", None) or []
    if profile is None and not off:
        return None
    from agent.privacy import PrivacyConfig, PrivacyError
    from agent.reveal import SitePrivacy

    if (profile or "full") != "full" and not args.privacy_key_file:
        raise PrivacyError(f"--privacy-profile {profile} needs --privacy-key-file FILE")
    cfg = PrivacyConfig(
        profile=profile or "full",
        key_file=args.privacy_key_file or "",
        map_file=args.privacy_map or "",
        **{name: False for name in off},
    )
    return SitePrivacy(cfg)


# What a bad rule, IOC, detections or p0f file raises while the pipeline loads its knowledge.
CONFIG_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, VeilleError, tomllib.TOMLDecodeError)


def make_pipeline(cfg: PipelineConfig) -> Pipeline | None:
    """The pipeline, or None after a one-line error naming the file or key that could not be loaded."""
    try:
        pipeline = Pipeline(cfg)
    except CONFIG_ERRORS as e:
        print(f"veille: error: {e}", file=sys.stderr)
        return None
    settle_gc()  # replay and --ship alike
    return pipeline


def run_replay(args: argparse.Namespace) -> int:
    try:
        cfg = build_config(args)
    except CONFIG_ERRORS as e:
        print(f"veille: error: {e}", file=sys.stderr)
        return 2
    from agent.privacy import PrivacyError

    try:
        privacy = privacy_from_args(args)
    except PrivacyError as e:
        print(f"veille: error: {e}", file=sys.stderr)
        return 2
    if args.ship:
        from veille.ship import run_ship

        return run_ship(args, cfg, privacy)
    made = make_pipeline(cfg)
    if made is None:
        return 2
    pipeline = made
    fmt = args.format or ("table" if sys.stdout.isatty() and not args.output else "jsonl")
    try:
        out: TextIO = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    except OSError as e:
        print(f"veille: error: -o {args.output}: {e.strerror}", file=sys.stderr)
        return 2
    writer: Any = {"jsonl": JsonlWriter, "eve": EveWriter}.get(fmt, TableWriter)(out)
    write = writer.write if privacy is None else (lambda evs: writer.write(privacy.apply(evs)))
    _report_skipped(pipeline)
    status = 0
    try:
        status = feed_files(pipeline, args.files, write)
        pipeline.finish()
        write(pipeline.take())
        writer.close()
    except BrokenPipeError:
        return 0
    finally:
        if args.output:
            out.close()
    return status


def feed_files(pipeline: Pipeline, files: list[str], sink: Any) -> int:
    """Feed every file; a bad file is reported on stderr and the run goes on with the next."""
    status = 0
    for path in files:
        pipeline.files += 1
        try:
            for evs in replay_frames(pipeline, pipeline.read(path)):
                sink(evs)
        except CaptureFileError as e:
            sink(pipeline.take())
            print(f"veille: error: {e}", file=sys.stderr)
            status = 1
    return status


def _report_skipped(pipeline: Pipeline) -> None:
    rs = getattr(pipeline, "ruleset", None)
    if rs is None:
        return
    for s in rs.skipped:
        print(f"veille: warning: {s}", file=sys.stderr)
    print(f"veille: rules: {rs.loaded} loaded, {len(rs.skipped)} skipped", file=sys.stderr)
