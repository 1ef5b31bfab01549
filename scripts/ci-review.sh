#!/usr/bin/env bash
# raystack in CI: review stack changes in pull requests, plan them on merge, and apply exactly
# the saved plans in a later job. The steps of examples/ci/github-actions.yml, which installs
# this file from raystack's repository (at the same revision as the binary) as `raystack-ci`;
# runs wherever git, curl and jq do. The test suite runs the workflow's steps end to end
# (tests/e2e/review.rs).
#
#   raystack-ci comment   diff every changed stack file against BASE_REF and post the review as
#                         one pull-request comment, updated in place on the next push (found by
#                         its `<!-- raystack: ID -->` marker); from a fork, skip the comment with
#                         a notice and put the review in the job summary
#   raystack-ci plan      for every stack file changed between BASE_REF and HEAD:
#                         `raystack plan STACK --out PLAN_DIR/…plan.json`; the list of stacks is
#                         PLAN_DIR/stacks, each plan also goes to the job summary
#   raystack-ci apply     for every plan in PLAN_DIR/stacks: `raystack apply PLANFILE` (refused
#                         if the stack, state or cluster moved since), then `raystack plan STACK
#                         --detailed-exitcode`, which must find no changes
#
# Every mode runs from the repository's top level: stack paths in plan files are relative to
# it, so the apply job's checkout (another runner, another directory) applies them.
#
# Environment (comment):
#   BASE_REF           git revision to compare with, e.g. origin/main          (required)
#   GITHUB_REPOSITORY  owner/name (set by GitHub Actions)                      (required)
#   PR_NUMBER          the pull request's number                               (required)
#   GITHUB_TOKEN       a token that may write pull-request comments            (required unless
#                      PR_FROM_FORK=true)
#   PR_FROM_FORK       true: the pull request comes from a fork, whose token is read-only; the
#                      review goes to the job summary and the log instead of a comment
#   GITHUB_API_URL     the API root (set by GitHub Actions; default https://api.github.com)
#   RAYSTACK_MARKER    the marker id (default: review); one comment per id
#   RAYSTACK_MAX_BYTES the comment's size limit (default: raystack's, GitHub's 65,536)
#   REVIEW_FULL        where to write the full, unshortened review (default: raystack-review.md),
#                      e.g. to upload as a build artifact
# Environment (plan):
#   BASE_REF           the revision before the merge, e.g. github.event.before  (required)
#   PLAN_DIR           where plan files are written (default: raystack-plans)
# Environment (apply):
#   PLAN_DIR           the plan job's PLAN_DIR, downloaded (default: raystack-plans)
# All: RAYSTACK, the raystack command (default: raystack); GITHUB_STEP_SUMMARY, a Markdown file
# shown on the run's page (set by GitHub Actions; optional).
#
# Exit status: 0 when every stack was reviewed (planned, applied), 1 when any failed.
set -euo pipefail

RAYSTACK=${RAYSTACK:-raystack}
mode=${1:-}

die() {
  echo "ci-review: $*" >&2
  exit 1
}

# A line of Markdown for the job summary, when there is one.
summary() {
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    cat >>"$GITHUB_STEP_SUMMARY"
  else
    cat >/dev/null
  fi
}

# Stack files (TOML with a [stack] table) changed between BASE_REF and the work tree.
changed_stacks() {
  git diff --name-only --no-renames "$BASE_REF" -- '*.toml' | while IFS= read -r f; do
    if [ -f "$f" ] && grep -q '^\[stack\]' "$f"; then
      echo "$f"
    elif [ ! -f "$f" ]; then
      echo "removed:$f"
    fi
  done
}

# The plan file of stack file $1 in PLAN_DIR: its path with `/` as `__`.
plan_file() {
  echo "$PLAN_DIR/${1//\//__}.plan.json"
}

# One request to the comment API; the answer's body on stdout. A refusal is one clear line.
api() {
  local out status
  out=$(mktemp)
  status=$(curl -sS --retry 3 -o "$out" -w '%{http_code}' \
    -H "Authorization: Bearer $GITHUB_TOKEN" \
    -H "Accept: application/vnd.github+json" \
    -H "X-GitHub-Api-Version: 2022-11-28" "$@") || {
    rm -f "$out"
    die "the comment API did not answer ($*)"
  }
  if [ "${status:0:1}" != 2 ]; then
    local message
    message=$(jq -r '.message // empty' <"$out" 2>/dev/null || true)
    rm -f "$out"
    case "$status" in
    401 | 403 | 404)
      die "the comment API refused (HTTP $status${message:+: $message}); the token needs \`pull-requests: write\` (a pull request from a fork only ever gets a read-only token: set PR_FROM_FORK=true)"
      ;;
    *) die "the comment API answered HTTP $status${message:+: $message}" ;;
    esac
  fi
  cat "$out"
  rm -f "$out"
}

comment() {
  : "${BASE_REF:?set BASE_REF}" "${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY}"
  : "${PR_NUMBER:?set PR_NUMBER}"
  local fork=${PR_FROM_FORK:-false}
  [ "$fork" = true ] || : "${GITHUB_TOKEN:?set GITHUB_TOKEN}"
  local api_url=${GITHUB_API_URL:-https://api.github.com}
  local id=${RAYSTACK_MARKER:-review}
  local marker="<!-- raystack: ${id} -->"
  local full=${REVIEW_FULL:-raystack-review.md}
  local body
  body=$(mktemp)
  trap 'rm -f "$body"' RETURN

  local limit=()
  [ -n "${RAYSTACK_MAX_BYTES:-}" ] && limit=(--max-bytes "$RAYSTACK_MAX_BYTES")
  # Exit 2 means "changes present"; 1 means some stack failed, and the review says which.
  local status=0
  "$RAYSTACK" diff --base "$BASE_REF" --format markdown --marker "$id" --detailed-exitcode \
    "${limit[@]}" >"$body" || status=$?
  "$RAYSTACK" diff --base "$BASE_REF" --format markdown --marker "$id" --max-bytes 0 \
    >"$full" || true
  [ "$(head -n1 "$body")" = "$marker" ] || die "raystack diff produced no review (exit $status)"

  if [ "$fork" = true ]; then
    # A fork's pull request runs with a read-only token (GitHub's rule, so that a fork cannot
    # use the repository's secrets or write access): no comment, the review goes to the job
    # summary and the log instead.
    summary <"$body"
    cat "$body" >&2
    echo "::notice title=raystack::pull request from a fork: the review is in the job summary, not a comment (the token is read-only)"
  else
    # The previous review: the first comment whose body starts with the marker.
    local existing="" page=1 comments
    while :; do
      comments=$(api "$api_url/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments?per_page=100&page=$page")
      existing=$(jq -r --arg m "$marker" \
        '[.[] | select(.body | startswith($m))][0].id // empty' <<<"$comments")
      [ -n "$existing" ] && break
      [ "$(jq length <<<"$comments")" -lt 100 ] && break
      page=$((page + 1))
    done
    local payload
    payload=$(jq -Rs '{body: .}' <"$body")
    if [ -n "$existing" ]; then
      api -X PATCH "$api_url/repos/$GITHUB_REPOSITORY/issues/comments/$existing" -d "$payload" >/dev/null
      echo "ci-review: updated comment $existing" >&2
    else
      api -X POST "$api_url/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" -d "$payload" >/dev/null
      echo "ci-review: posted a new comment" >&2
    fi
  fi
  [ "$status" -ne 1 ] || die "some stacks failed to diff; the review says which"
}

plan() {
  : "${BASE_REF:?set BASE_REF}"
  PLAN_DIR=${PLAN_DIR:-raystack-plans}
  mkdir -p "$PLAN_DIR"
  : >"$PLAN_DIR/stacks"
  local failed=0 stack out
  while IFS= read -r stack; do
    case "$stack" in
    removed:*)
      # Destroying a cluster deletes its Redis volume: never from CI on its own.
      echo "::warning title=raystack::${stack#removed:} was removed; run \`raystack destroy\` on it by hand"
      continue
      ;;
    esac
    out=$(plan_file "$stack")
    echo "==> $stack" >&2
    # The plan is printed into the job log, saved, and shown in the job summary for whoever
    # approves the apply job.
    if "$RAYSTACK" plan "$stack" --out "$out"; then
      echo "$stack" >>"$PLAN_DIR/stacks"
      "$RAYSTACK" show "$out" --format markdown | summary
    else
      echo "ci-review: $stack failed to plan" >&2
      failed=1
    fi
  done < <(changed_stacks)
  [ "$failed" -eq 0 ] || die "some stacks failed to plan"
}

apply() {
  PLAN_DIR=${PLAN_DIR:-raystack-plans}
  [ -f "$PLAN_DIR/stacks" ] || die "no plans in \`$PLAN_DIR\`: download the plan job's artifact there"
  local failed=0 stack
  while IFS= read -r stack; do
    echo "==> $stack" >&2
    # Exactly the saved plan: apply refuses it if the stack file, the state or the cluster
    # moved since it was made. Then the stack must be converged.
    if ! "$RAYSTACK" apply "$(plan_file "$stack")" --auto-approve; then
      echo "ci-review: $stack failed to apply" >&2
      failed=1
    elif ! "$RAYSTACK" plan "$stack" --detailed-exitcode >/dev/null; then
      echo "ci-review: $stack still has changes after apply" >&2
      failed=1
    fi
  done <"$PLAN_DIR/stacks"
  [ "$failed" -eq 0 ] || die "some stacks failed to apply"
}

cd "$(git rev-parse --show-toplevel)"
case "$mode" in
comment) comment ;;
plan) plan ;;
apply) apply ;;
*) die "usage: $0 comment|plan|apply" ;;
esac
