"""Fixtures of the conformance suite: every test runs once per adapter kind (`profile`)."""

from __future__ import annotations

import pytest

from router_service.fake_upstream import FakeUpstream
from tests.conformance.profiles import PROFILES, Profile, conformance_config
from tests.conftest import RouterHandle, StartRouter


@pytest.fixture(params=PROFILES, ids=str)
def profile(request: pytest.FixtureRequest) -> Profile:
    profile: Profile = request.param
    return profile


@pytest.fixture
async def router(fake: FakeUpstream, start_router: StartRouter, profile: Profile) -> RouterHandle:
    """A router whose `up` provider speaks the profile's format (see `conformance_config`)."""
    return await start_router(conformance_config(fake, profile))
