"""The CLI's option checks and exit-code mapping, in-process (no export, no torch): the guide's contract
0 ok / 1 export failed / 2 validation failed / 3 configuration error, one `exportkit: error:` line each."""

from __future__ import annotations

import argparse
import json

import pytest

from exportkit import cli, errors
from exportkit.errors import (
    CheckpointError,
    ConfigError,
    EnvironmentUnsupported,
    ExportError,
    MissingDependency,
    ValidationFailed,
)
from exportkit.options import Option, resolve_options


def test_exit_codes_follow_the_guide():
    assert (errors.EXIT_OK, errors.EXIT_EXPORT_FAILED, errors.EXIT_VALIDATION_FAILED, errors.EXIT_CONFIG_ERROR) == (
        0,
        1,
        2,
        3,
    )
    assert [
        e("x").exit_code for e in (ConfigError, ExportError, CheckpointError, EnvironmentUnsupported, ValidationFailed)
    ] == [3, 1, 1, 1, 2]
    missing = MissingDependency("onnx", "onnx")
    assert missing.exit_code == 1 and (missing.package, missing.extra) == ("onnx", "onnx")
    assert str(missing) == "package 'onnx' is not installed; install it with: pip install -e '.[onnx]'"
    assert ExportError("two\n  lines\tand  tabs").one_line() == "two lines and tabs"


@pytest.mark.parametrize(
    "error, code",
    [
        (ConfigError("bad\nvalue"), 3),
        (ValidationFailed("2 of 9 checks"), 2),
        (CheckpointError("not a model"), 1),
        (RuntimeError("boom\n here"), 1),
    ],
)
def test_run_guarded_prints_one_line_and_returns_the_code(error, code, std, monkeypatch):
    monkeypatch.delenv("EXPORTKIT_DEBUG", raising=False)

    def body():
        raise error

    assert std.run(cli.run_guarded, body) == code
    err = std.readouterr().err
    assert err.count("\n") == 1 and err.startswith("exportkit: error: ")
    if isinstance(error, RuntimeError):
        assert err == "exportkit: error: RuntimeError: boom here\n"
    else:
        assert err == f"exportkit: error: {error.one_line()}\n"


def test_run_guarded_debug_adds_the_traceback(std, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_DEBUG", "1")

    def body():
        raise ExportError("deep")

    assert std.run(cli.run_guarded, body) == 1
    err = std.readouterr().err
    assert "Traceback" in err and err.endswith("exportkit: error: deep\n")


def test_run_guarded_interrupt_and_success(std):
    def interrupted():
        raise KeyboardInterrupt

    assert std.run(cli.run_guarded, interrupted) == 130
    assert std.readouterr().err == "exportkit: error: interrupted; nothing was published\n"
    assert std.run(cli.run_guarded, lambda: 0) == 0 and std.readouterr().err == ""


def test_parse_config(tmp_path):
    assert cli.parse_config(None) == {} and cli.parse_config("  ") == {} and cli.parse_config("") == {}
    assert cli.parse_config(' {"opset": 17} ') == {"opset": 17}
    file = tmp_path / "c.json"
    file.write_text('{"half": true}')
    assert cli.parse_config(str(file)) == {"half": True}
    with pytest.raises(
        ConfigError,
        match=r"""^export_config is not valid JSON \(Expecting value at line 1 column 11\): '\{"opset": \}'$""",
    ):
        cli.parse_config('{"opset": }')
    file.write_text("[1]")
    with pytest.raises(
        ConfigError, match=rf"^{file} must be a JSON object like \{{\"opset_version\": 17\}}, got list$"
    ):
        cli.parse_config(str(file))
    with pytest.raises(ConfigError, match="export_config must be a JSON object"):
        cli.parse_config("3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        cli.parse_config(str(tmp_path / "missing.json"))


def _args(**given):
    return argparse.Namespace(**{k: given.get(k) for k in cli.ENV_VARS})


def test_flags_fall_back_to_environment_variables():
    env = {"CHECKPOINT_PATH": "env.pt", "EXPORT_FORMAT": "onnx", "OUTPUT_DIR": "out", "EXPORT_CONFIG": '{"opset": 18}'}
    assert cli.resolve_arguments(_args(), env) == {
        "checkpoint_path": "env.pt",
        "export_format": "onnx",
        "output_dir": "out",
        "export_config": {"opset": 18},
    }
    flags = cli.resolve_arguments(_args(checkpoint_path="flag.pt", export_config="{}"), env)
    assert flags["checkpoint_path"] == "flag.pt" and flags["export_config"] == {}
    assert (
        cli.resolve_arguments(_args(checkpoint_path="a", export_format="b", output_dir="c"), {})["export_config"] == {}
    )


def test_missing_arguments_are_named():
    with pytest.raises(
        ConfigError,
        match=r"^missing required argument: --checkpoint_path \(or CHECKPOINT_PATH\), "
        r"--export_format \(or EXPORT_FORMAT\), --output_dir \(or OUTPUT_DIR\)$",
    ):
        cli.resolve_arguments(_args(), {})
    with pytest.raises(ConfigError, match=r"^missing required argument: --output_dir \(or OUTPUT_DIR\)$"):
        cli.resolve_arguments(_args(checkpoint_path="a", export_format="b", output_dir=""), {})


def test_main_maps_bad_input_to_exit_3_in_process(std, monkeypatch, tmp_path):
    for key in cli.ENV_VARS.values():
        monkeypatch.delenv(key, raising=False)
    assert std.run(cli.main, []) == 3
    assert "missing required argument" in std.readouterr().err
    assert std.run(cli.main, ["--no-such-flag"]) == 3
    assert std.readouterr().err == "exportkit: error: unrecognized arguments: --no-such-flag\n"
    assert std.run(cli.main, ["--checkpoint", "x"]) == 3  # no abbreviations
    std.readouterr()
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    code = std.run(
        cli.main,
        [
            "--checkpoint_path",
            str(ckpt),
            "--export_format",
            "onnx",
            "--output_dir",
            str(tmp_path / "o"),
            "--export_config",
            json.dumps({"opset": 99}),
        ],
    )
    assert code == 3 and "opset" in std.readouterr().err
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_parser_help_and_quiet(std):
    parser = cli.build_parser()
    assert parser.prog == "export.py"
    assert parser.parse_args(["-q"]).quiet and not parser.parse_args([]).quiet
    text = " ".join(parser.format_help().split())
    for name in (
        "CHECKPOINT_PATH",
        "EXPORT_FORMAT",
        "OUTPUT_DIR",
        "EXPORT_CONFIG",
        "0 ok, 1 export failed, 2 validation failed, 3 configuration error",
    ):
        assert name in text
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--help"])
    assert exit_info.value.code == 0


# -- typed options ------------------------------------------------------------------------------------
OPTIONS = (
    Option("opset", int, 17, "ONNX opset", 13, 18),
    Option("half", bool, False, "fp16"),
    Option("scale", float, 1.0, "a float", 0.5, 2.0),
    Option("target", str, "iOS16", "t", choices=("iOS15", "iOS16")),
    Option("data", str, None, "path", nullable=True),
)


def test_options_accept_each_end_of_a_range_and_every_choice():
    defaults = resolve_options(OPTIONS, {}, "onnx")
    assert defaults == {"opset": 17, "half": False, "scale": 1.0, "target": "iOS16", "data": None}
    assert resolve_options(OPTIONS, {"opset": 13}, "onnx")["opset"] == 13
    assert resolve_options(OPTIONS, {"opset": 18}, "onnx")["opset"] == 18
    assert resolve_options(OPTIONS, {"target": "iOS15"}, "x")["target"] == "iOS15"
    scale = resolve_options(OPTIONS, {"scale": 2}, "x")["scale"]
    assert scale == 2.0 and isinstance(scale, float)
    assert resolve_options(OPTIONS, {"data": None}, "x")["data"] is None


@pytest.mark.parametrize(
    "given, message",
    [
        ({"opset": 12}, "onnx: option 'opset' must be in 13-18, got 12"),
        ({"opset": 19}, "onnx: option 'opset' must be in 13-18, got 19"),
        ({"opset": 17.0}, "onnx: option 'opset' must be int, got 17.0 (float)"),
        ({"opset": True}, "onnx: option 'opset' must be int, got True (bool)"),
        ({"half": 1}, "onnx: option 'half' must be bool, got 1 (int)"),
        ({"scale": "1"}, "onnx: option 'scale' must be float, got '1' (str)"),
        ({"scale": False}, "onnx: option 'scale' must be float, got False (bool)"),
        ({"scale": 0.4}, "onnx: option 'scale' must be in 0.5-2.0, got 0.4"),
        ({"target": "iOS14"}, "onnx: option 'target' must be one of 'iOS15', 'iOS16', got 'iOS14'"),
        ({"target": None}, "onnx: option 'target' must be str, got None (NoneType)"),
        ({"opsett": 17, "zz": 1}, "onnx: unknown option 'opsett'; accepted keys: data, half, opset, scale, target"),
    ],
)
def test_options_refuse_bad_values_naming_them(given, message):
    with pytest.raises(ConfigError) as info:
        resolve_options(OPTIONS, given, "onnx")
    assert str(info.value) == message


def test_option_descriptions():
    opset, half, _, target, data = OPTIONS
    assert opset.type_name == "int" and data.type_name == "str | null" and half.type_name == "bool"
    assert opset.describe_range() == "13-18" and target.describe_range() == "one of 'iOS15', 'iOS16'"
    assert half.describe_range() == "" and Option("lo", int, 1, "", minimum=1).describe_range() == ""
    low_only = Option("lo", int, 1, "", minimum=1)
    assert low_only.check(10**6, "x") == 10**6
    with pytest.raises(ConfigError, match="must be in 1-None, got 0"):
        low_only.check(0, "x")
    with pytest.raises(ConfigError, match="must be in None-5, got 6"):
        Option("hi", int, 1, "", maximum=5).check(6, "x")


def test_main_prints_what_it_exported_and_the_validation(std, monkeypatch, tmp_path):
    from pathlib import Path
    from types import SimpleNamespace

    from exportkit import pipeline

    calls = []

    def plan(checkpoint, fmt, out, config):
        calls.append((checkpoint, fmt, out, config))
        return SimpleNamespace(format=SimpleNamespace(name="onnx"), output_dir=Path(out))

    validation = SimpleNamespace(summary=lambda: "passed 48 checks on 5 inputs (25 boxes compared)")
    result = SimpleNamespace(files=[Path("model.xml"), Path("model.bin")], seconds=1.234, validation=validation)
    monkeypatch.setattr(pipeline, "plan_export", plan)
    monkeypatch.setattr(pipeline, "run_export", lambda p: (calls.append(("run", p.format.name)), result)[1])
    monkeypatch.setattr(cli, "setup_logging", lambda quiet: calls.append(("quiet", quiet)))
    argv = [
        "--checkpoint_path",
        "m.pt",
        "--export_format",
        "onnx",
        "--output_dir",
        str(tmp_path),
        "--export_config",
        '{"a": 1}',
        "-q",
    ]
    assert std.run(cli.main, argv) == 0
    assert calls == [("quiet", True), ("m.pt", "onnx", str(tmp_path), {"a": 1}), ("run", "onnx")]
    assert std.readouterr().out == (
        f"exported onnx to {tmp_path}: model.xml, model.bin + metadata.json (1.2s)\n"
        "validation: passed 48 checks on 5 inputs (25 boxes compared)\n"
    )
    result.validation = None
    assert std.run(cli.main, argv[:-1]) == 0
    assert "validation" not in std.readouterr().out and calls[-3] == ("quiet", False)


def test_debug_traceback_for_an_unexpected_error_too(std, monkeypatch):
    monkeypatch.setenv("EXPORTKIT_DEBUG", "1")

    def body():
        raise KeyError("k")

    assert std.run(cli.run_guarded, body) == 1
    err = std.readouterr().err
    assert "Traceback" in err and "KeyError" in err and err.endswith("exportkit: error: KeyError: 'k'\n")


def test_invalid_json_is_quoted_up_to_60_characters():
    text = "{" + "x" * 100
    with pytest.raises(ConfigError) as info:
        cli.parse_config(text)
    assert str(info.value).endswith(repr(text[:60]))


@pytest.mark.parametrize("quiet, level", [(False, 20), (True, 30)])  # logging.INFO, logging.WARNING
def test_setup_logging_levels(monkeypatch, quiet, level):
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.NOTSET)
    cli.setup_logging(quiet)
    assert root.level == level and len(root.handlers) == 1
    handler = root.handlers[0]
    # the log goes to stdout beside Ultralytics'; stderr is kept for the one error line (issue 11)
    assert handler.stream is __import__("sys").stdout and handler.formatter._fmt == "%(message)s"


def test_each_flag_documents_its_environment_variable_and_the_guides_formats():
    import re

    formats = "onnx|tensorrt|coreml|tflite|torchscript|openvino"  # the export guide's --export_format line
    helps = {a.dest: a.help for a in cli.build_parser()._actions}
    for flag, env in cli.ENV_VARS.items():
        assert helps[flag] and re.search(rf"\[env {env}\]$", helps[flag]), (flag, helps[flag])
    assert helps["export_format"].startswith(formats + " ")
    assert helps["quiet"] == "only print errors"


def test_help_epilog_names_every_environment_variable_and_exit_code():
    parser = cli.build_parser()
    # the flags' own help names their variables too, so the epilog and description are read on their own
    assert parser.description.startswith("Export an Ultralytics checkpoint to a production format")
    assert "metadata.json" in parser.description and "validation" in parser.description
    epilog = parser.epilog
    assert epilog.startswith(
        "Each flag falls back to its environment variable (CHECKPOINT_PATH, EXPORT_FORMAT, OUTPUT_DIR, EXPORT_CONFIG)."
    )
    for var in cli.ENV_VARS.values():
        assert var in epilog
    assert set(cli.ENV_VARS.values()) == {
        "CHECKPOINT_PATH",
        "EXPORT_FORMAT",
        "OUTPUT_DIR",
        "EXPORT_CONFIG",
    }  # the guide's
    assert epilog.endswith(" Exit codes: 0 ok, 1 export failed, 2 validation failed, 3 configuration error.")
    assert parser.allow_abbrev is False
