"""The SQL of network detection: every flow of the table classified by vector signature, in ONE query over a
table named ``flows`` (the flow schema; parsed rows are those with ``reject_reason`` null). The same text is the
evidence a finding cites: run it over the flows and it reproduces the counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floodwitness.analysis.network_vectors import Vectors, VectorSpec

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def _direct_condition(spec: VectorSpec, services: str, speaker_share: float) -> str:
    if not spec.proto:  # fragments: no ports and fragments counted, or TCP/UDP with both ports 0 (nfdump)
        return ("((f.fragments > 0 AND f.src_port IS NULL AND f.proto NOT IN (1, 58)) "
                "OR (f.proto IN (6, 17) AND f.src_port = 0 AND f.dst_port = 0))")
    parts = [f"f.proto IN ({', '.join(str(p) for p in spec.proto)})"]
    if spec.flags_all:
        parts.append(f"(f.tcp_flags & {spec.flags_all}) = {spec.flags_all}")
    if spec.flags_none:
        parts.append(f"(f.tcp_flags & {spec.flags_none}) = 0")
    if spec.connection == "none":
        parts.append("c.a IS NULL")
    elif spec.connection == "unanswered":  # a service port counts only from a sender that speaks from it
        parts.append(f"u.a IS NULL AND (coalesce(f.src_port, -1) NOT IN ({services}) "
                     f"OR coalesce(r.share, 0) < {speaker_share})")
    return "(" + " AND ".join(parts) + ")"


def classify_sql(vectors: Vectors) -> str:
    """A WITH clause ending in ``classified``: the parsed flows with ``vector`` (a key of data/vectors.json or
    null) and ``nat`` (a reflector answering from a translated high port, tied to the service by the target port
    and packet size)."""
    ports = vectors.by_port()
    services = ", ".join(str(p) for p in sorted(ports))
    refl_case = " ".join(f"WHEN {port} THEN '{key}'" for port, key in sorted(ports.items()))
    share = vectors.speaker_share
    cases = [f"WHEN {_direct_condition(vectors.direct['fragment_flood'], services, share)} THEN 'fragment_flood'",
             f"WHEN f.proto = 17 AND f.src_port IN ({services}) AND (q.first IS NULL OR q.first > f.\"end\") "
             f"AND r.share >= {share} "
             f"THEN CASE f.src_port {refl_case} END"]
    cases += [f"WHEN {_direct_condition(spec, services, share)} THEN '{key}'"
              for key, spec in vectors.direct.items() if key != "fragment_flood"]
    ratio = vectors.nat_size_ratio
    return f"""WITH base AS (SELECT * FROM flows WHERE reject_reason IS NULL),
tcp_conn AS (SELECT src_ip AS a, dst_ip AS b FROM base WHERE proto = 6 AND (tcp_flags & {ACK}) <> 0
               AND (tcp_flags & {SYN | FIN | PSH}) <> 0
             UNION SELECT dst_ip AS a, src_ip AS b FROM base WHERE proto = 6 AND (tcp_flags & {ACK}) <> 0
               AND (tcp_flags & {RST}) = 0 AND ((tcp_flags & {SYN}) = 0 OR (tcp_flags & {PSH | FIN}) <> 0)),
udp_back AS (SELECT DISTINCT dst_ip AS a, src_ip AS b FROM base WHERE proto = 17),
asked AS (SELECT src_ip AS victim, dst_ip AS server, dst_port AS port, min(start) AS first FROM base
          WHERE proto = 17 AND dst_port IN ({services}) GROUP BY ALL),
udp_pairs AS (SELECT src_ip, dst_ip, sum(packets) AS p FROM base
              WHERE proto = 17 AND src_port IS NOT NULL AND NOT (src_port = 0 AND dst_port = 0) GROUP BY ALL),
speaks AS (SELECT b.src_ip, b.dst_ip, b.src_port, sum(b.packets) / any_value(u.p) AS share FROM base b
           JOIN udp_pairs u ON u.src_ip = b.src_ip AND u.dst_ip = b.dst_ip
           WHERE b.proto = 17 AND b.src_port IN ({services}) GROUP BY ALL),
signed AS (SELECT f.*, CASE {' '.join(cases)} END AS vector FROM base f
           LEFT JOIN tcp_conn c ON f.proto = 6 AND c.a = f.src_ip AND c.b = f.dst_ip
           LEFT JOIN udp_back u ON f.proto = 17 AND u.a = f.src_ip AND u.b = f.dst_ip
           LEFT JOIN asked q ON f.proto = 17 AND q.victim = f.dst_ip AND q.server = f.src_ip
                                AND q.port = f.src_port
           LEFT JOIN speaks r ON f.proto = 17 AND r.src_ip = f.src_ip AND r.dst_ip = f.dst_ip
                                AND r.src_port = f.src_port),
hit AS (SELECT dst_ip, dst_port, arg_max(vector, p) AS vector, sum(b) / sum(p) AS size FROM
          (SELECT dst_ip, dst_port, vector, sum(packets) AS p, sum(bytes) AS b FROM signed
           WHERE vector LIKE '%\\_reflection' ESCAPE '\\' GROUP BY ALL) GROUP BY ALL),
classified AS (SELECT s.* REPLACE (CASE WHEN n.vector IS NOT NULL THEN n.vector ELSE s.vector END AS vector),
                      n.vector IS NOT NULL AS nat
               FROM signed s LEFT JOIN hit n ON s.vector = 'udp_flood' AND s.src_port >= {vectors.nat_min_port}
                 AND n.dst_ip = s.dst_ip AND n.dst_port = s.dst_port
                 AND s.bytes / s.packets BETWEEN n.size / {ratio} AND n.size * {ratio})"""


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def evidence_sql(vectors: Vectors, vector: str, hosts: list[str], start_s: int, end_s: int) -> str:
    """The query that reproduces a vector's sources, packets and bytes in an episode (flows starting in its
    seconds, to the target's hosts)."""
    inlist = ", ".join(sql_text(h) for h in hosts)
    return (f"{classify_sql(vectors)}\nSELECT count(DISTINCT src_ip) AS sources, sum(packets) AS packets, "
            f"sum(bytes) AS bytes FROM classified WHERE vector = {sql_text(vector)} AND dst_ip IN ({inlist}) "
            f"AND start >= to_timestamp({start_s}) AND start < to_timestamp({end_s + 1})")


def series_sql() -> str:
    """Per (target, key) the per-second rate changes of packets and bits: each flow spread evenly over the seconds
    it spans (+rate at its first second, -rate after its last); key '*' is all the target's traffic, else a
    vector. Reads ``fw_net_cls`` and ``fw_net_targets`` (dst_ip -> target)."""
    return """WITH f AS (SELECT t.target, c.vector, CAST(floor(epoch(c.start)) AS BIGINT) AS s0,
                  CAST(floor(epoch(c."end")) AS BIGINT) AS s1, c.packets, c.bytes
           FROM fw_net_cls c JOIN fw_net_targets t USING (dst_ip)),
k AS (SELECT target, '*' AS key, s0, s1, sum(packets) AS p, sum(bytes) AS b FROM f GROUP BY ALL
      UNION ALL SELECT target, vector, s0, s1, sum(packets), sum(bytes) FROM f WHERE vector IS NOT NULL
      GROUP BY ALL),
ev AS (SELECT target, key, s0 AS sec, p / (s1 - s0 + 1) AS dp, b * 8.0 / (s1 - s0 + 1) AS db FROM k
       UNION ALL SELECT target, key, s1 + 1, -p / (s1 - s0 + 1), -b * 8.0 / (s1 - s0 + 1) FROM k)
SELECT target, key, sec, sum(dp) AS dp, sum(db) AS db FROM ev GROUP BY ALL ORDER BY target, key, sec"""


def episode_vectors_sql() -> str:
    """Per episode and vector: packets, bytes, sources, the busiest target port. Reads ``fw_net_eps``."""
    return """WITH m AS (SELECT e.id, c.vector, c.src_ip, c.dst_port, c.packets, c.bytes, c.nat
           FROM fw_net_cls c JOIN fw_net_targets t USING (dst_ip)
           JOIN fw_net_eps e ON e.target = t.target AND c.vector = e.vector
             AND CAST(floor(epoch(c.start)) AS BIGINT) BETWEEN e.s0 AND e.s1),
ports AS (SELECT id, vector, dst_port, sum(packets) AS p FROM m GROUP BY ALL)
SELECT m.id, m.vector, sum(m.packets) AS packets, sum(m.bytes) AS bytes, count(*) AS records,
       count(DISTINCT m.src_ip) AS sources,
       count(DISTINCT m.src_ip) FILTER (WHERE m.nat) AS nat_sources,
       (SELECT arg_max(dst_port, p) FROM ports x WHERE x.id = m.id AND x.vector = m.vector) AS top_port,
       (SELECT max(p) FROM ports x WHERE x.id = m.id AND x.vector = m.vector) AS top_port_packets
FROM m GROUP BY ALL"""


def spoofing_sql() -> str:
    """Per episode, over its vectors' flows: distinct sources, the share sending one (sampled) packet or one flow
    record (a sampled export that does not say its rate shows one sampled packet as one record of N), bogon
    sources and packets (``fw_net_bogons``: IPv4 ranges; ``private`` counted only for a public target)."""
    return """WITH m AS (SELECT e.id, e.private_target, c.src_ip, sum(c.packets) AS p, max(c.sampling) AS n,
           count(*) AS r
           FROM fw_net_cls c JOIN fw_net_targets t USING (dst_ip)
           JOIN fw_net_eps e ON e.target = t.target AND c.vector = e.vector
             AND CAST(floor(epoch(c.start)) AS BIGINT) BETWEEN e.s0 AND e.s1 GROUP BY ALL),
v AS (SELECT *, CASE WHEN regexp_full_match(src_ip, '[0-9]{1,3}(\\.[0-9]{1,3}){3}') THEN
        CAST(split_part(src_ip, '.', 1) AS BIGINT) * 16777216 + CAST(split_part(src_ip, '.', 2) AS BIGINT) * 65536
        + CAST(split_part(src_ip, '.', 3) AS BIGINT) * 256 + CAST(split_part(src_ip, '.', 4) AS BIGINT) END AS v4
      FROM m),
b AS (SELECT v.*, EXISTS (SELECT 1 FROM fw_net_bogons g WHERE v.v4 BETWEEN g.lo AND g.hi
                          AND (NOT g.private OR NOT v.private_target)) AS bogon FROM v)
SELECT id, count(*) AS sources, avg(CASE WHEN p <= n OR r = 1 THEN 1.0 ELSE 0.0 END) AS one_packet_share,
       count(*) FILTER (WHERE bogon) AS bogon_sources, coalesce(sum(p) FILTER (WHERE bogon), 0) AS bogon_packets
FROM b GROUP BY id"""


def samples_sql(n: int = 3) -> str:
    return f"""SELECT * FROM (SELECT e.id, c.vector, c.file_id, c.record, c.src_ip, c.src_port, c.dst_ip, c.dst_port,
       c.proto, c.tcp_flags, c.packets, c.bytes, c.nat,
       row_number() OVER (PARTITION BY e.id, c.vector ORDER BY c.file_id, c.record) AS rn
FROM fw_net_cls c JOIN fw_net_targets t USING (dst_ip)
JOIN fw_net_eps e ON e.target = t.target AND c.vector = e.vector
  AND CAST(floor(epoch(c.start)) AS BIGINT) BETWEEN e.s0 AND e.s1) WHERE rn <= {n} ORDER BY id, vector, rn"""
