"""The ``gridshift`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridshift import __version__


def _cmd_crd(args: argparse.Namespace) -> int:
    from gridshift.api.crd import all_crds, render_yaml

    docs = [render_yaml(c) for c in all_crds()]
    if args.write:
        out = Path(args.write)
        out.mkdir(parents=True, exist_ok=True)
        for crd, text in zip(all_crds(), docs, strict=True):
            path = out / f"{crd['metadata']['name']}.yaml"
            path.write_text(text)
            print(f"wrote {path}")
    else:
        sys.stdout.write("---\n".join(docs))
    return 0


def _parse_pools(args: argparse.Namespace):
    from gridshift.devcluster.controlplane import NodePool

    sites = [s.strip() for s in args.sites.split(",") if s.strip()]
    if not sites:
        raise SystemExit("gridshift: --sites: give at least one site name")
    return [NodePool(count=args.nodes, gpus_per_node=args.gpus_per_node, site=s, racks=args.racks) for s in sites]


def _cmd_cluster_up(args: argparse.Namespace) -> int:
    from gridshift.devcluster.binaries import BinaryError
    from gridshift.devcluster.cluster import DevCluster
    from gridshift.devcluster.controlplane import ClusterError

    directory = Path(args.dir) if args.dir else None
    try:
        cluster = DevCluster.up(directory=directory, pools=_parse_pools(args), log=_stderr)
    except (BinaryError, ClusterError, TimeoutError) as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    bin_dir = cluster.binaries.directory
    print(f"cluster is up: {cluster.node_count} GPU nodes, API server {cluster.server}")
    print(f"kubeconfig:    {cluster.kubeconfig}")
    print(f"binaries:      {bin_dir}")
    print("try:")
    print(f"  export KUBECONFIG={cluster.kubeconfig} PATH={bin_dir}:$PATH")
    print("  kubectl get nodes -L gridshift.io/site,gridshift.io/rack")
    print(f"stop it with:  gridshift dev cluster down{' --dir ' + str(args.dir) if args.dir else ''}")
    return 0


def _cmd_cluster_down(args: argparse.Namespace) -> int:
    from gridshift.devcluster.cluster import DevCluster

    stopped = DevCluster.down(Path(args.dir) if args.dir else None)
    print("cluster stopped" if stopped else "no cluster was running")
    return 0


def _cmd_cluster_status(args: argparse.Namespace) -> int:
    from gridshift.devcluster.cluster import DevCluster

    info = DevCluster.status(Path(args.dir) if args.dir else None)
    if info is None:
        print("no cluster is running")
        return 1
    for key, value in info.items():
        print(f"{key + ':':14}{value}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from gridshift.devcluster.binaries import BinaryError, ensure_binaries

    try:
        bins = ensure_binaries(log=_stderr)
    except BinaryError as exc:
        print(f"gridshift: {exc}", file=sys.stderr)
        return 1
    print(bins.directory)
    return 0


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridshift", description="Keep an AI data center inside its power budget."
    )
    parser.add_argument("--version", action="version", version=f"gridshift {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    crd = sub.add_parser("crd", help="print the CustomResourceDefinitions generated from the API types")
    crd.add_argument("--write", metavar="DIR", help="write one YAML file per CRD into DIR instead of printing")
    crd.set_defaults(func=_cmd_crd)

    dev = sub.add_parser("dev", help="developer tools: a local Kubernetes control plane")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    cluster = dev_sub.add_parser("cluster", help="a real control plane on loopback with fake GPU nodes")
    cl_sub = cluster.add_subparsers(dest="cluster_command", required=True)

    up = cl_sub.add_parser("up", help="build (once) and start etcd, the control plane and kwok GPU nodes")
    up.add_argument("--dir", help="cluster state directory (default ~/.cache/gridshift/clusters/default)")
    up.add_argument("--nodes", type=int, default=4, help="GPU nodes per site (default 4)")
    up.add_argument("--gpus-per-node", type=int, default=8, help="nvidia.com/gpu per node (default 8)")
    up.add_argument("--racks", type=int, default=2, help="racks per site (default 2)")
    up.add_argument("--sites", default="site-a", help="comma-separated site names (default site-a)")
    up.set_defaults(func=_cmd_cluster_up)

    down = cl_sub.add_parser("down", help="stop every process of the local cluster")
    down.add_argument("--dir", help="cluster state directory")
    down.set_defaults(func=_cmd_cluster_down)

    status = cl_sub.add_parser("status", help="say whether the local cluster runs and where")
    status.add_argument("--dir", help="cluster state directory")
    status.set_defaults(func=_cmd_cluster_status)

    build = cl_sub.add_parser("build", help="only build (or find) the control-plane binaries; print their folder")
    build.set_defaults(func=_cmd_build)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("nodes", "gpus_per_node", "racks"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
