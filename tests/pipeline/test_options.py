import pytest

from collapseguard.pipeline.options import UsageError, parse_run_args, sample_config, sample_inputs


def test_defaults_run_the_embedded_sample():
    ns, beam_args = parse_run_args([])
    assert ns.inputs == [sample_inputs()] and ns.config == sample_config()
    assert ns.output == "collapseguard-out" and ns.scoring_model == "default" and beam_args == []


def test_beam_flags_pass_through():
    ns, beam_args = parse_run_args(["--input", "a.jsonl,b/*.jsonl", "--runner=DirectRunner",
                                    "--direct_num_workers", "2", "--direct_running_mode=multi_processing"])
    assert ns.inputs == ["a.jsonl", "b/*.jsonl"] and ns.config is None
    assert "--runner=DirectRunner" in beam_args


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--outptu", "x"], "unknown flag --outptu.*--output"),
        (["--scoring_modle=none"], "unknown flag"),
        (["--runer=DirectRunner"], "unknown flag --runer.*--runner"),
        (["--lm-sample-rate", "0"], "lm-sample-rate"),
        (["--input", " , "], "--input is empty"),
        (["--scoring-model", "none", "--write-lm-embedding"], "needs an LM"),
    ],
)
def test_misspelled_or_invalid_flags_fail(argv, message):
    with pytest.raises(UsageError, match=message):
        parse_run_args(argv)
