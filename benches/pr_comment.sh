#!/usr/bin/env bash
# The review job of examples/ci/github-actions.yml with its cache warm, step by step, on this
# machine: how long from a pull request's push to its comment, of the part the recipe controls
# (BENCHMARKS.md, "Pull request to comment"). GitHub's own part (queueing the job, starting the
# runner) is not here.
#
#   benches/pr_comment.sh [CHANGED_STACKS] [RUNS]
#
# Uses target/release/raystack (build it first: `cargo build --release --locked -p raystack`)
# and scripts/ci-review.sh. Sets up, once: a stacks repository of 20 stack files whose pull
# request changes CHANGED_STACKS of them (default 1), the Actions cache of the recipe's install
# steps as a tarball of ~/.raystack, and a local stand-in for GitHub's comment API (python3).
# Then, RUNS times (default 5), the job's steps as the recipe writes them: check out the pull
# request (`actions/checkout` with fetch-depth 0: a full clone), restore the cache, put it on
# the PATH, `raystack-ci comment` (the first run posts the comment, the others update it).
# Prints each step's wall time per run, in seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
changed=${1:-1}
runs=${2:-5}
binary=$root/target/release/raystack
[ -x "$binary" ] || { echo "build it first: cargo build --release --locked -p raystack" >&2; exit 1; }
command -v jq >/dev/null && command -v curl >/dev/null || { echo "needs jq and curl" >&2; exit 1; }

work=$(mktemp -d)
api_pid=""
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# The Actions cache of the install steps: ~/.raystack/bin/{raystack,raystack-ci}.
mkdir -p "$work/build/.raystack/bin"
install -m 0755 "$binary" "$work/build/.raystack/bin/raystack"
install -m 0755 "$root/scripts/ci-review.sh" "$work/build/.raystack/bin/raystack-ci"
tar -C "$work/build" -czf "$work/cache.tgz" .raystack

# The stacks repository: 20 local-provider stacks on main, a pull request changing some.
origin=$work/origin
mkdir -p "$origin/stacks"
git -C "$origin" init -q -b main
for i in $(seq 1 20); do
  sed -e "s/ray-local/team-$i/g" "$root/stacks/local.toml" >"$origin/stacks/team-$i.toml"
done
git -C "$origin" add -A
git -C "$origin" -c user.name=bench -c user.email=bench@localhost commit -qm "stacks"
git -C "$origin" checkout -q -b pr
for i in $(seq 1 "$changed"); do
  sed -i 's/max_data_loss = "2s"/max_data_loss = "0s"/' "$origin/stacks/team-$i.toml"
done
git -C "$origin" -c user.name=bench -c user.email=bench@localhost commit -qam "tighten durability"

# GitHub's comment API, enough of it for ci-review.sh: list, create, update.
cat >"$work/api.py" <<'EOF'
import json, re, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
comments = []
class H(BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def body(self):
        return json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
    def do_GET(self):
        self.reply(200, comments if "page=1" in self.path else [])
    def do_POST(self):
        c = {"id": len(comments) + 1, "body": self.body()["body"]}
        comments.append(c)
        self.reply(201, c)
    def do_PATCH(self):
        cid = int(re.search(r"/comments/(\d+)", self.path).group(1))
        comments[cid - 1]["body"] = self.body()["body"]
        self.reply(200, comments[cid - 1])
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
EOF
python3 "$work/api.py" "$work/port" &
api_pid=$!
for _ in $(seq 1 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")

# Microseconds since the epoch, and seconds between two of them.
now() { echo "${EPOCHREALTIME/[.,]/}"; }
secs() { local d=$(($2 - $1)); printf ' %3d.%03d' $((d / 1000000)) $((d % 1000000 / 1000)); }

# Runs one step quietly and prints its seconds; a failed step shows its output and stops.
step() {
  local start
  start=$(now)
  "$@" >"$work/step.log" 2>&1 || { echo; cat "$work/step.log" >&2; exit 1; }
  secs "$start" "$(now)"
}

echo "changed stacks: $changed of 20; seconds per step"
echo "run  checkout  cache  comment  total"
for run in $(seq 1 "$runs"); do
  job=$work/job-$run
  mkdir -p "$job/home"
  start=$(now)
  printf '%3d ' "$run"
  step git clone -q "file://$origin" "$job/repo" -b pr
  step tar -C "$job/home" -xzf "$work/cache.tgz"
  (
    cd "$job/repo"
    export PATH="$job/home/.raystack/bin:$PATH" HOME="$job/home"
    export BASE_REF=origin/main PR_NUMBER=1 PR_FROM_FORK=false GITHUB_TOKEN=bench-token \
      GITHUB_REPOSITORY=bench/stacks GITHUB_API_URL="http://127.0.0.1:$port" \
      REVIEW_FULL="$job/raystack-review.md"
    step raystack-ci comment
  )
  secs "$start" "$(now)"
  echo
done
