"""Multi-node proof on one machine: a Ray head and a second Ray node (two raylets on
loopback), the gateway deployed across both, requests through it, and Ray's own state
showing where every replica runs.

    python load_tests/multinode.py [--requests 6]

Node A (the head) offers the custom resource `gateway_edge`, node B `gateway_engines`.
The ingress asks for `gateway_edge`, the engine tiers for `gateway_engines`
(`GATEWAY_INGRESS__RESOURCES`, `GATEWAY_<TIER>__RESOURCES`: on a real cluster these are
the node types of ray_cluster.yaml, e.g. GPU workers). Ray places the replicas; this
script only reads back where they landed (`ray.util.state.list_actors`) and prints it.
Writes load_tests/results/multinode.json. Run it alone: it owns its Ray instance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import wait_ready  # noqa: E402

RESULTS = Path(__file__).parent / "results"
EDGE, ENGINES = "gateway_edge", "gateway_engines"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6)
    parser.add_argument("--port", type=int, default=8014)
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import httpx
    import ray
    from ray import serve
    from ray.cluster_utils import Cluster
    from ray.util.state import list_actors, list_nodes

    from deployments.app import build
    from deployments.settings import Settings

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "resources": {EDGE: 1}})
    node_b = cluster.add_node(num_cpus=2, resources={ENGINES: 1})
    try:
        ray.init(address=cluster.address, namespace="gateway")
        cluster.wait_for_nodes()
        settings = Settings(
            http={"port": args.port},
            ingress={"resources": {EDGE: 0.1}},
            small={"resources": {ENGINES: 0.1}},
            large={"resources": {ENGINES: 0.1}},
        )
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(build(settings), name=settings.app_name, route_prefix="/", blocking=False)
        url = f"http://127.0.0.1:{args.port}"
        wait_ready(url)
        answers = []
        for i in range(args.requests):
            model = ("auto", "small", "large")[i % 3]
            r = httpx.post(f"{url}/v1/chat/completions", timeout=300, json={
                "model": model, "max_tokens": 8, "temperature": 0,
                "messages": [{"role": "user", "content": "Where is my order?"}]})
            r.raise_for_status()
            answers.append({"model": model, "status": r.status_code, "tier": r.headers["x-gateway-tier"]})
        nodes = {n.node_id: {"ip": n.node_ip, "head": n.is_head_node, "resources": n.resources_total}
                 for n in list_nodes(detail=True)}
        replicas = []
        for actor in list_actors(filters=[("state", "=", "ALIVE")], detail=True):
            name = actor.class_name or ""
            if "ServeReplica" not in name:
                continue
            deployment = name.split(":")[-1]
            node = nodes.get(actor.node_id, {})
            replicas.append({"deployment": deployment, "node_id": actor.node_id, "pid": actor.pid,
                             "node": "A (head, gateway_edge)" if node.get("head") else "B (gateway_engines)"})
        replicas.sort(key=lambda r: r["deployment"])
    finally:
        serve.shutdown()
        ray.shutdown()
        cluster.remove_node(node_b)
        cluster.shutdown()
    report = {
        "benchmark": "multinode_proof",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "nodes": {node_id: info for node_id, info in nodes.items()},
        "replicas": replicas, "requests": answers,
    }
    for r in replicas:
        print(f"{r['deployment']:14s} node {r['node']:26s} {r['node_id'][:12]}  pid {r['pid']}")
    print(f"{sum(a['status'] == 200 for a in answers)}/{len(answers)} requests answered "
          f"({', '.join(a['model'] + '->' + a['tier'] for a in answers)})")
    engines_on_b = all(r["node"].startswith("B") for r in replicas if r["deployment"] in ("SmallEngine", "LargeEngine"))
    ingress_on_a = all(r["node"].startswith("A") for r in replicas if r["deployment"] == "Ingress")
    report["placement_as_requested"] = engines_on_b and ingress_on_a
    print(f"placement as requested: {report['placement_as_requested']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "multinode.json").write_text(json.dumps(report, indent=2))
    if not report["placement_as_requested"] or len(answers) != args.requests:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
