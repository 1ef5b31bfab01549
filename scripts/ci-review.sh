#!/usr/bin/env bash
# raystack in CI: review stack changes in pull requests, and apply reviewed changes on merge.
# The steps of examples/ci/github-actions.yml; runs wherever git, curl and jq do.
#
#   scripts/ci-review.sh comment   diff every changed stack file against BASE_REF and post the
#                                  review as one pull-request comment, updated in place on the
#                                  next push (found by its `<!-- raystack: ID -->` marker)
#   scripts/ci-review.sh apply     for every stack file changed between BASE_REF and HEAD:
#                                  `raystack plan --out PLANFILE`, then `raystack apply PLANFILE`
#
# Environment (comment):
#   BASE_REF           git revision to compare with, e.g. origin/main          (required)
#   GITHUB_REPOSITORY  owner/name                                              (required)
#   PR_NUMBER          the pull request's number                               (required)
#   GITHUB_TOKEN       a token that may write pull-request comments            (required)
#   GITHUB_API_URL     the API root (default https://api.github.com)
#   RAYSTACK_MARKER    the marker id (default: review); one comment per id
#   RAYSTACK_MAX_BYTES the comment's size limit (default: raystack's, GitHub's 65,536)
#   REVIEW_FULL        where to write the full, unshortened review (default: raystack-review.md),
#                      e.g. to upload as a build artifact
# Environment (apply):
#   BASE_REF           the revision before the merge, e.g. HEAD^ or github.event.before (required)
#   PLAN_DIR           where plan files are written (default: raystack-plans)
# Both: RAYSTACK, the raystack command (default: raystack).
#
# Exit status: 0 when every stack was reviewed (or applied), 1 when any failed.
set -euo pipefail

RAYSTACK=${RAYSTACK:-raystack}
mode=${1:-}

die() {
  echo "ci-review: $*" >&2
  exit 1
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

comment() {
  : "${BASE_REF:?set BASE_REF}" "${GITHUB_REPOSITORY:?set GITHUB_REPOSITORY}"
  : "${PR_NUMBER:?set PR_NUMBER}" "${GITHUB_TOKEN:?set GITHUB_TOKEN}"
  local api=${GITHUB_API_URL:-https://api.github.com}
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

  gh() {
    curl -fsS --retry 3 \
      -H "Authorization: Bearer $GITHUB_TOKEN" \
      -H "Accept: application/vnd.github+json" \
      -H "X-GitHub-Api-Version: 2022-11-28" "$@"
  }
  # The previous review: the first comment whose body starts with the marker.
  local existing="" page=1 comments
  while :; do
    comments=$(gh "$api/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments?per_page=100&page=$page")
    existing=$(jq -r --arg m "$marker" \
      '[.[] | select(.body | startswith($m))][0].id // empty' <<<"$comments")
    [ -n "$existing" ] && break
    [ "$(jq length <<<"$comments")" -lt 100 ] && break
    page=$((page + 1))
  done
  local payload
  payload=$(jq -Rs '{body: .}' <"$body")
  if [ -n "$existing" ]; then
    gh -X PATCH "$api/repos/$GITHUB_REPOSITORY/issues/comments/$existing" -d "$payload" >/dev/null
    echo "ci-review: updated comment $existing" >&2
  else
    gh -X POST "$api/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" -d "$payload" >/dev/null
    echo "ci-review: posted a new comment" >&2
  fi
  [ "$status" -ne 1 ] || die "some stacks failed to diff; the comment says which"
}

apply() {
  : "${BASE_REF:?set BASE_REF}"
  local dir=${PLAN_DIR:-raystack-plans} failed=0 stack plan
  mkdir -p "$dir"
  while IFS= read -r stack; do
    case "$stack" in
    removed:*)
      # Destroying a cluster deletes its Redis volume: never from CI on its own.
      echo "ci-review: ${stack#removed:} was removed; run \`raystack destroy\` on it by hand" >&2
      continue
      ;;
    esac
    plan="$dir/$(echo "$stack" | tr '/' '_').plan"
    echo "==> $stack" >&2
    # The plan is printed into the job log, saved, and exactly that plan is applied (apply
    # refuses it if the cluster or state moved in between).
    if ! { "$RAYSTACK" plan "$stack" --out "$plan" && "$RAYSTACK" apply "$plan" --auto-approve; }; then
      echo "ci-review: $stack failed" >&2
      failed=1
    fi
  done < <(changed_stacks)
  [ "$failed" -eq 0 ] || die "some stacks failed to apply"
}

case "$mode" in
comment) comment ;;
apply) apply ;;
*) die "usage: $0 comment|apply" ;;
esac
