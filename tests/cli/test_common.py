"""Helpers shared by the subcommands (relufim.cli._common): warnings on stderr, the progress label."""

import warnings

import click
import pytest
from click.testing import CliRunner

from relufim.cli._common import product_progress_label, scheduler_client, warnings_on_stderr
from relufim.model.activations import AccuracyWarning


def _invoke(body):
    """Run ``body`` inside a click command; returns the CliRunner result (stderr apart from stdout)."""

    @click.command()
    def command():
        body()

    return CliRunner().invoke(command, [])


def test_warnings_on_stderr_one_line_each_without_repeats():
    def body():
        with warnings_on_stderr():
            warnings.warn("first  line\n   and more", UserWarning, stacklevel=1)
            warnings.warn("first line and more", RuntimeWarning, stacklevel=1)
            warnings.warn("second", UserWarning, stacklevel=1)
        click.echo("after")

    r = _invoke(body)
    assert r.exit_code == 0 and r.stdout == "after\n"
    assert r.stderr.splitlines() == ["relufim: warning: first line and more", "relufim: warning: second"]


def test_warnings_on_stderr_records_its_category_every_time():
    def body():
        with warnings_on_stderr(AccuracyWarning):
            for _ in range(2):
                warnings.warn("bound 1e-9", AccuracyWarning, stacklevel=1)

    r = _invoke(body)
    assert r.stderr == "relufim: warning: bound 1e-9\n"


def test_warnings_on_stderr_prints_nothing_when_the_block_raises():
    def body():
        with warnings_on_stderr():
            warnings.warn("not shown", UserWarning, stacklevel=1)
            raise ValueError("boom")

    r = _invoke(body)
    assert isinstance(r.exception, ValueError) and r.stderr == ""


def test_scheduler_client_without_a_scheduler_is_none():
    with scheduler_client(None, quiet=True) as client:
        assert client is None


@pytest.mark.parametrize("per_product,distributed,label", [
    (False, False, "  eigenpairs converged"), (False, True, "  eigenpairs converged"),
    (True, False, "  tiles of product"), (True, True, "  row blocks of product")])
def test_product_progress_label(per_product, distributed, label):
    assert product_progress_label(per_product, distributed) == label
