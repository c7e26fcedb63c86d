"""Policy profiles: the files, their documented numbers, versioning through the admin API, pinning."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import httpx
import pytest

from models.deadlines import CHINA_TZ, compute_due
from models.policy import DeadlineName, PolicyProfile
from models.policy_store import load_profile_files
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, login

PROFILES = load_profile_files()


def test_every_region_of_the_sources_has_a_profile() -> None:
    assert {"national", "yantai", "xiangtan", "shanwei", "pingdingshan", "demo"} <= PROFILES.keys()
    for profile in PROFILES.values():
        for name, rule in profile.deadlines.items():
            assert rule.source.strip(), f"{profile.code}.{name} has no source"


SOURCE_NAMES = (
    "国办发〔2019〕51号",
    "烟台2020方案",
    "湘潭方案",
    "汕尾方案",
    "平顶山2023通知",
    "浙江实践",
    "四川实践",
    "江苏实践",
    "广东试行",
)


def _sources(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k.endswith("source") and isinstance(v, str)]
        return found + [s for v in value.values() for s in _sources(v)]
    if isinstance(value, list):
        return [s for v in value for s in _sources(v)]
    return []


def test_profile_sources_name_documents_listed_in_docs_sources() -> None:
    listed = Path("docs/sources.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in listed for name in SOURCE_NAMES)
    for profile in PROFILES.values():
        for source in _sources(profile.model_dump(mode="json")):
            assert not any(word in source for word in ("seed", "DOMAIN", "DESIGN", ".txt")), source
            if profile.code != "demo":
                assert "system default" in source or any(name in source for name in SOURCE_NAMES), source
    for path in Path("policy/profiles").glob("*.toml"):
        text = path.read_text(encoding="utf-8")
        assert not any(word in text for word in ("seed 0", "DOMAIN", "DESIGN", ".txt")), path


def test_shanwei_scores_and_bad_levels() -> None:
    shanwei = PROFILES["shanwei"]
    assert [rule.score for rule in shanwei.levels] == [10, 8, 6, 3, 0]
    assert [rule.level for rule in shanwei.levels if rule.bad] == ["dissatisfied", "very_dissatisfied"]
    assert shanwei.is_bad("very_dissatisfied") and not shanwei.is_bad("basically_satisfied")


def test_shanwei_invites_an_unrated_transaction_24_hours_after_completion() -> None:
    completed = datetime(2026, 9, 30, 16, 30, tzinfo=CHINA_TZ)  # the eve of National Day: natural hours still count
    due = compute_due(completed, PROFILES["shanwei"].rating.invitation_after)
    assert due.at == datetime(2026, 10, 1, 16, 30, tzinfo=CHINA_TZ)


def test_yantai_supplementary_rating_window_is_5_working_days_across_national_day() -> None:
    yantai = PROFILES["yantai"]
    completed = datetime(2026, 9, 29, 10, 0, tzinfo=CHINA_TZ)
    # 30 Sep, then 1–7 Oct are holidays; 8, 9 Oct; Saturday 10 Oct is a 调休 workday; 12 Oct is the fifth.
    due = compute_due(completed, yantai.rating.supplementary)
    assert due.at == datetime(2026, 10, 13, 0, 0, tzinfo=CHINA_TZ)
    assert compute_due(completed, yantai.rating.invitation_after).at == datetime(2026, 9, 30, 10, 0, tzinfo=CHINA_TZ)
    assert str(yantai.deadline(DeadlineName.CALLBACK).within) == "1wd"
    assert [rule.label for rule in yantai.levels] == ["非常满意", "满意", "基本满意", "不满意", "非常不满意"]


def test_national_labels_follow_the_state_council_opinion() -> None:
    assert [rule.label for rule in PROFILES["national"].levels] == ["很好", "好", "一般", "差", "很差"]


def test_pingdingshan_counts_silence_as_not_satisfied() -> None:
    assert PROFILES["pingdingshan"].rater_silence_outcome == "not_satisfied"
    assert PROFILES["national"].rater_silence_outcome == "satisfied"


def test_a_broken_profile_file_names_the_file_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "national.toml").write_text((Path("policy/profiles/national.toml")).read_text(encoding="utf-8"))
    (tmp_path / "broken.toml").write_text('extends = "national"\ncode = "broken"\nname = "x"\nmax_reopen_rounds = -1\n')
    with pytest.raises(ValueError, match=r"(?s)broken\.toml.*max_reopen_rounds"):
        load_profile_files(tmp_path)
    (tmp_path / "broken.toml").write_text('extends = "nowhere"\ncode = "broken"\n')
    with pytest.raises(ValueError, match="unknown profile 'nowhere'"):
        load_profile_files(tmp_path)


def test_reminders_must_be_natural_time() -> None:
    body = PROFILES["national"].model_dump(mode="json")
    body["deadlines"]["callback"]["remind_before"] = ["1wd"]
    with pytest.raises(ValueError, match="natural time"):
        PolicyProfile.model_validate(body)


async def test_admin_edits_make_new_versions_and_cases_pin_theirs(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    current = (await offline_api.get("/api/v1/policies/yantai", headers=staff)).json()
    assert current["version"] == 1 and current["origin"] == "file"

    first = (await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})).json()

    profile = current["profile"]
    profile["deadlines"]["callback"]["within"] = "2wd"
    profile["deadlines"]["callback"]["source"] = "烟台市 2027 年调整（测试）"
    refused = await offline_api.put(
        "/api/v1/policies/yantai", json={"profile": profile, "note": "回访延长"}, headers=staff
    )
    assert refused.status_code == 403
    edited = await offline_api.put(
        "/api/v1/policies/yantai", json={"profile": profile, "note": "回访延长"}, headers=admin
    )
    assert edited.status_code == 201, edited.text
    assert edited.json()["version"] == 2 and edited.json()["created_by"] == 1

    versions = (await offline_api.get("/api/v1/policies/yantai/versions", headers=staff)).json()
    assert [(v["version"], v["profile"]["deadlines"]["callback"]["within"]) for v in versions] == [
        (1, "1wd"),
        (2, "2wd"),
    ]
    old = (await offline_api.get("/api/v1/policies/yantai?version=1", headers=staff)).json()
    assert old["profile"]["deadlines"]["callback"]["within"] == "1wd"

    second = (
        await offline_api.post("/api/v1/ratings", json=bad_rating("DEMO-0004"), headers={"X-API-Key": demo.api_key})
    ).json()
    first_case = (await offline_api.get(f"/api/v1/cases/{first['case_id']}", headers=staff)).json()
    second_case = (await offline_api.get(f"/api/v1/cases/{second['case_id']}", headers=staff)).json()
    assert (first_case["policy_code"], first_case["policy_version"]) == ("yantai", 1)
    assert (second_case["policy_code"], second_case["policy_version"]) == ("yantai", 2)


async def test_policy_edit_validation(offline_api: httpx.AsyncClient, demo: DemoCredentials) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    profile = (await offline_api.get("/api/v1/policies/national", headers=admin)).json()["profile"]
    mismatch = await offline_api.put("/api/v1/policies/yantai", json={"profile": profile, "note": "x"}, headers=admin)
    assert mismatch.status_code == 422 and mismatch.json()["detail"]["field"] == "profile.code"
    del profile["deadlines"]["feedback"]
    missing = await offline_api.put("/api/v1/policies/national", json={"profile": profile, "note": "x"}, headers=admin)
    assert missing.status_code == 422 and "feedback" in missing.text
    assert (await offline_api.get("/api/v1/policies/nowhere", headers=admin)).status_code == 404


async def test_region_policy_choice_drives_bad_review_levels(
    offline_api: httpx.AsyncClient, demo: DemoCredentials
) -> None:
    admin = await login(offline_api, "admin", demo.passwords["admin"])
    profile = (await offline_api.get("/api/v1/policies/national", headers=admin)).json()["profile"]
    profile["code"], profile["name"] = "strict", "严格（测试）"
    for level in profile["levels"]:
        level["bad"] = level["level"] != "very_satisfied"
    assert (
        await offline_api.put("/api/v1/policies/strict", json={"profile": profile, "note": "新建"}, headers=admin)
    ).status_code == 201
    assert (
        await offline_api.put("/api/v1/regions/370600/policy", json={"policy_code": "nowhere"}, headers=admin)
    ).status_code == 422
    chosen = await offline_api.put("/api/v1/regions/370600/policy", json={"policy_code": "strict"}, headers=admin)
    assert chosen.status_code == 200
    response = await offline_api.post(
        "/api/v1/ratings", json=bad_rating(level="basically_satisfied"), headers={"X-API-Key": demo.api_key}
    )
    assert response.json()["is_bad"] is True
