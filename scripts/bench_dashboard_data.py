"""The dashboard benchmark's data (scripts/bench_dashboard.py): a province, and the SQL that writes its year.

Every choice is a deterministic hash of the row's number (`pg_temp.h(n, salt)`, uniform in [0, 1)), so a
rerun writes the same rows, and everything is written server-side by INSERT … SELECT.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

CITIES, DEPARTMENTS, COUNTIES, COUNTY_DEPARTMENTS, STAFF_PER_UNIT, ITEMS = 16, 10, 4, 4, 5, 400

SESSION = """
SET LOCAL synchronous_commit = off;
SET LOCAL work_mem = '256MB';
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL jit = off;
CREATE FUNCTION pg_temp.h(n bigint, salt int) RETURNS float8 LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8extended(n, salt) & 1048575)::float8 / 1048576 $$
"""


def province_rows(conn: Connection) -> None:
    """The province's regions, unit tree, items and staff; `bench_unit` numbers the units that handle transactions."""
    conn.execute(text("INSERT INTO region (code, name, policy_code) VALUES ('430000', '某省', 'national')"))
    conn.execute(
        text(
            "INSERT INTO region (code, name, policy_code) "
            "SELECT '43' || lpad(c::text, 2, '0') || '00', '某市' || c, 'national' FROM generate_series(1, :n) c"
        ),
        {"n": CITIES},
    )
    province_region = conn.execute(text("SELECT id FROM region WHERE code = '430000'")).scalar_one()

    def unit(code: str, name: str, region: int, parent: int | None) -> int:
        return int(
            conn.execute(
                text("INSERT INTO unit (code, name, region_id, parent_id) VALUES (:c, :n, :r, :p) RETURNING id"),
                {"c": code, "n": name, "r": region, "p": parent},
            ).scalar_one()
        )

    root = unit("BENCH-SHENG", "某省政务服务管理办公室", province_region, None)
    working: list[int] = []
    for c in range(1, CITIES + 1):
        region = conn.execute(text("SELECT id FROM region WHERE code = :c"), {"c": f"43{c:02d}00"}).scalar_one()
        city = unit(f"BENCH-C{c:02d}", f"某市{c}政务服务管理局", region, root)
        working.append(city)
        working += [unit(f"BENCH-C{c:02d}-D{d}", f"某市{c}第{d}局", region, city) for d in range(1, DEPARTMENTS + 1)]
        for x in range(1, COUNTIES + 1):
            county = unit(f"BENCH-C{c:02d}-X{x}", f"某市{c}某县{x}政务服务中心", region, city)
            working.append(county)
            working += [
                unit(f"BENCH-C{c:02d}-X{x}-D{d}", f"某市{c}某县{x}第{d}局", region, county)
                for d in range(1, COUNTY_DEPARTMENTS + 1)
            ]
    conn.execute(text("CREATE TEMP TABLE bench_unit (k int PRIMARY KEY, unit_id int NOT NULL)"))
    conn.execute(
        text("INSERT INTO bench_unit SELECT k - 1, u FROM unnest(CAST(:units AS int[])) WITH ORDINALITY AS t(u, k)"),
        {"units": working},
    )
    conn.execute(
        text(
            "INSERT INTO serviceitem (code, name, item_type) "
            "SELECT 'BENCH-I' || i, '事项' || i, '行政许可' FROM generate_series(1, :n) i"
        ),
        {"n": ITEMS},
    )
    conn.execute(
        text(
            "INSERT INTO staff (unit_id, staff_no, name) "
            "SELECT u.unit_id, 'BENCH-S' || u.k || '-' || j, '工作人员' || u.k || '-' || j "
            "FROM bench_unit u CROSS JOIN generate_series(0, :n - 1) j"
        ),
        {"n": STAFF_PER_UNIT},
    )
    conn.execute(
        text(
            "CREATE TEMP TABLE bench_staff AS SELECT s.unit_id, "
            "(row_number() OVER (PARTITION BY s.unit_id ORDER BY s.id) - 1)::int AS j, s.id AS staff_id "
            "FROM staff s JOIN bench_unit u ON u.unit_id = s.unit_id"
        )
    )
    conn.execute(text("CREATE INDEX ON bench_staff (unit_id, j)"))
    conn.execute(text("ANALYZE bench_unit; ANALYZE bench_staff"))


@dataclass(frozen=True)
class Step:
    name: str
    sql: str


_LEVEL = """CASE WHEN {x} < 0.70 THEN 'very_satisfied' WHEN {x} < 0.90 THEN 'satisfied'
    WHEN {x} < 0.99 THEN 'basically_satisfied' WHEN {x} < 0.996 THEN 'dissatisfied' ELSE 'very_dissatisfied' END"""
_CHANNEL = """CASE WHEN {x} < 0.20 THEN 'pc' WHEN {x} < 0.55 THEN 'mobile' WHEN {x} < 0.65 THEN 'qr_code'
    WHEN {x} < 0.80 THEN 'hall_tablet' WHEN {x} < 0.85 THEN 'hall_terminal' WHEN {x} < 0.88 THEN 'phone'
    WHEN {x} < 0.90 THEN 'sms' ELSE 'system_default' END"""


def _ratings(target: str, where: str, salt: int, source: str) -> str:
    """Ratings of the selected records: a default rating is never bad; 5 % of bad ones not adopted (appeal upheld)."""
    return f"""
INSERT INTO rating (record_id, level, channel, target, stage, follow_up, answers, comment, real_name, is_bad, adopted,
                    source_system, submitted_at)
SELECT id, level, channel, '{target}', 'whole', 0, '{{}}', '', bad AND pg_temp.h(id, {salt + 3}) < 0.4, bad,
       NOT bad OR pg_temp.h(id, {salt + 4}) < 0.95, '{source}',
       least(completed_at + pg_temp.h(id, {salt + 5}) * interval '72 hours', now())
FROM (SELECT id, completed_at, level, channel, level IN ('dissatisfied', 'very_dissatisfied') AS bad
      FROM (SELECT s.id, s.completed_at, {_CHANNEL.format(x=f"pg_temp.h(s.id, {salt + 1})")} AS channel,
                   {_LEVEL.format(x=f"pg_temp.h(s.id, {salt + 2})")} AS drawn
            FROM servicerecord s WHERE s.source_system = '{source}' AND {where}) AS d,
           LATERAL (SELECT CASE WHEN channel = 'system_default' THEN 'satisfied' ELSE drawn END AS level) AS l
     ) AS r"""


_CASES = """
INSERT INTO "case" (rating_id, unit_id, workflow_id, stage, outcome, round, overdue, escalation_rung, policy_code,
                    policy_version, deadlines, has_provisional_deadline, opened_at, updated_at)
SELECT id, unit_id, 'bench-' || id, stage, outcome, 1, overdue, CASE WHEN overdue THEN 1 + (pg_temp.h(id, 32) * 3)::int
       ELSE 0 END, 'national', 1, '[]', false, submitted_at, now()
FROM (SELECT r.id, s.unit_id, r.submitted_at, v.stage, v.outcome,
             v.stage NOT IN ('closed', 'not_adopted') AND pg_temp.h(r.id, 31) < 0.3 AS overdue
      FROM rating r JOIN servicerecord s ON s.id = r.record_id,
           LATERAL (SELECT pg_temp.h(r.id, 30) AS x, pg_temp.h(r.id, 33) AS y) AS d,
           LATERAL (SELECT CASE WHEN NOT r.adopted THEN 'not_adopted' WHEN x < 0.70 THEN 'closed'
                                WHEN x < 0.78 THEN 'rectification' WHEN x < 0.83 THEN 'verification'
                                WHEN x < 0.86 THEN 'assigned' WHEN x < 0.89 THEN 'feedback'
                                WHEN x < 0.91 THEN 'appeal_review' ELSE 'rater_response' END AS stage,
                           CASE WHEN NOT r.adopted THEN 'not_adopted' WHEN x >= 0.70 THEN NULL
                                WHEN y < 0.6 THEN 'satisfied' WHEN y < 0.8 THEN 'satisfied_by_silence'
                                WHEN y < 0.9 THEN 'unsatisfied' ELSE 'cannot_rectify' END AS outcome) AS v
      WHERE r.is_bad AND r.follow_up = 0 AND r.source_system = {source} AND r.lead_rating_id IS NULL) AS c"""

# A case's timeline: which events it has follows from its stage and outcome (and a hash for callbacks and lateness).
_EVENTS = """
INSERT INTO caseevent (case_id, event_key, stage, round, action, actor, at, data, recorded_at)
SELECT c.id, e.key, e.stage, 1, e.action, 'system', c.opened_at + e.after, e.data::json, now()
FROM "case" c JOIN rating r ON r.id = c.rating_id
CROSS JOIN (VALUES
    ('0001-accepted', 'verification', 'accepted', interval '1 hour', '{}', 'all'),
    ('0002-callback', 'verification', 'callback', interval '3 hours', '{}', 'called'),
    ('0003-verified', 'rectification', 'verified', interval '1 day', '{}', 'verified'),
    ('0004-overdue', 'rectification', 'overdue', interval '4 days', '{"deadline": "rectification_immediate", "rung": 1}', 'late'),
    ('0005-escalated', 'rectification', 'escalated', interval '5 days', '{"deadline": "rectification_immediate", "rung": 2}', 'later'),
    ('0006-rectified', 'feedback', 'rectified', interval '6 days', '{}', 'rectified'),
    ('0007-cannot_rectify_requested', 'rectification', 'cannot_rectify_requested', interval '2 days', '{}', 'cannot'),
    ('0008-cannot_rectify_approved', 'closed', 'cannot_rectify_approved', interval '3 days', '{}', 'cannot'),
    ('0009-appeal_filed', 'appeal_review', 'appeal_filed', interval '2 days', '{}', 'appealed'),
    ('0010-appeal_upheld', 'not_adopted', 'appeal_upheld', interval '3 days', '{}', 'upheld')
) AS e(key, stage, action, after, data, applies)
WHERE c.workflow_id LIKE {prefix} AND CASE e.applies
    WHEN 'all' THEN true
    WHEN 'called' THEN r.real_name AND pg_temp.h(c.id, 40) < 0.9
    WHEN 'verified' THEN c.stage NOT IN ('assigned', 'verification')
    WHEN 'late' THEN c.stage NOT IN ('assigned', 'verification') AND pg_temp.h(c.id, 41) < 0.15
    WHEN 'later' THEN c.stage NOT IN ('assigned', 'verification') AND pg_temp.h(c.id, 41) < 0.05
    WHEN 'rectified' THEN c.stage IN ('feedback', 'rater_response') OR c.outcome IN ('satisfied', 'satisfied_by_silence', 'unsatisfied')
    WHEN 'cannot' THEN c.outcome = 'cannot_rectify'
    WHEN 'appealed' THEN c.stage IN ('appeal_review', 'not_adopted')
    WHEN 'upheld' THEN c.stage = 'not_adopted'
END"""  # noqa: E501 - a table of events reads best one to a line

_RECORDS = """
INSERT INTO servicerecord (record_no, item_id, unit_id, staff_id, applicant_type, service_channel, source_system,
                           completed_at, created_at)
SELECT {number}, (SELECT min(id) FROM serviceitem WHERE code LIKE 'BENCH-I%') + (u.k * 13 + floor(pg_temp.h(n, 2) * 12)::int) % {items},
       u.unit_id, CASE WHEN g.window THEN st.staff_id END, 'individual',
       CASE WHEN g.window THEN 'window' ELSE 'online' END, {source}, {completed}, {completed}
FROM (SELECT n, pg_temp.h(n, 4) < 0.4 AS window FROM generate_series(1, :n) AS n) AS g
JOIN bench_unit u ON u.k = floor(pg_temp.h(n, 1) * (SELECT count(*) FROM bench_unit))::int
LEFT JOIN bench_staff st ON st.unit_id = u.unit_id AND st.j = floor(pg_temp.h(n, 3) * {staff})::int"""  # noqa: E501

LOAD = [
    Step(
        "service records",
        _RECORDS.format(
            number="'B' || n",
            items=ITEMS,
            staff=STAFF_PER_UNIT,
            source="'bench'",
            completed="CAST(:start AS timestamptz) + ((n - 1)::float8 / :n) * (:days * interval '1 day')",
        ),
    ),
    Step("item ratings", _ratings("item", "pg_temp.h(s.id, 7) < 0.9", 10, "bench")),
    Step("staff ratings", _ratings("staff", "s.staff_id IS NOT NULL AND pg_temp.h(s.id, 8) < 0.25", 20, "bench")),
    Step(
        "follow-ups",
        """
INSERT INTO rating (record_id, level, channel, target, stage, follow_up, answers, comment, real_name, is_bad, adopted,
                    source_system, submitted_at)
SELECT record_id, CASE WHEN pg_temp.h(id, 50) < 0.8 THEN 'satisfied' ELSE 'dissatisfied' END, channel, target, stage, 1,
       '{}', '', false, pg_temp.h(id, 50) >= 0.8, true, source_system, least(submitted_at + interval '5 days', now())
FROM rating WHERE source_system = 'bench' AND follow_up = 0 AND channel <> 'system_default' AND pg_temp.h(id, 51) < 0.005""",  # noqa: E501
    ),
    Step("cases", _CASES.format(source="'bench'")),
    Step("case timelines", _EVENTS.replace("{prefix}", "'bench-%'")),
]

# 10,000 new ratings of transactions completed in the last two days, each with its record, 1 % bad with a case.
NEW_RATINGS = (
    SESSION.rstrip()
    + ";\n"
    + ";\n".join(
        [
            "CREATE TEMP TABLE bench_unit AS SELECT (row_number() OVER (ORDER BY id) - 1)::int AS k, id AS unit_id "
            "FROM unit WHERE code LIKE 'BENCH-C%'",
            "CREATE TEMP TABLE bench_staff AS SELECT s.unit_id, (row_number() OVER (PARTITION BY s.unit_id ORDER BY s.id) "
            "- 1)::int AS j, s.id AS staff_id FROM staff s JOIN bench_unit u ON u.unit_id = s.unit_id",
            _RECORDS.format(
                number="'BN' || n",
                items=ITEMS,
                staff=STAFF_PER_UNIT,
                source="'bench-new'",
                completed="now() - pg_temp.h(n, 9) * interval '2 days'",
            ),
            _ratings("item", "true", 60, "bench-new"),
            _CASES.format(source="'bench-new'").replace("'bench-' || id", "'bench-new-' || id"),
            _EVENTS.replace("{prefix}", "'bench-new-%'"),
        ]
    )
)
