import re

import toolrl_trl


def test_version_is_exposed_and_pep440():
    assert re.fullmatch(r"\d+\.\d+\.\d+", toolrl_trl.__version__)


def test_trl_is_the_pinned_release():
    import trl

    assert trl.__version__ == "1.16.0", "setup.cfg pins trl==1.16.0; the project is tested against it only"
