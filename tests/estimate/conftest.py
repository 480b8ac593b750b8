import pytest

from toy_models import toy_target

from edgefit.targets import target_from_dict


@pytest.fixture
def toy():
    return target_from_dict(toy_target())
