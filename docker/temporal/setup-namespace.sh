#!/bin/sh
# One-off job (temporalio/admin-tools): the application's namespace and the case workflow's search
# attributes (models/search_attributes.py; docs/operations.md). Safe to run again.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${HCP_TEMPORAL_NAMESPACE:?}"
ns="$HCP_TEMPORAL_NAMESPACE"

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  attempt=$((attempt + 1))
  [ "$attempt" -lt 60 ] || { echo "Temporal at $TEMPORAL_ADDRESS is not healthy"; exit 1; }
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" -n "$ns" >/dev/null 2>&1; then
  echo "namespace $ns exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" -n "$ns" \
    --retention "${TEMPORAL_NAMESPACE_RETENTION:-30d}"
fi

# A new namespace reaches every frontend's cache a few seconds later; until then it is "not found".
attempt=0
until existing=$(temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" -n "$ns" 2>&1); do
  attempt=$((attempt + 1))
  [ "$attempt" -lt 60 ] || { echo "namespace $ns not usable: $existing"; exit 1; }
  sleep 2
done
for attribute in HcpStage=Keyword HcpUnitId=Int HcpOverdue=Bool HcpEscalationRung=Int; do
  name=${attribute%%=*}
  kind=${attribute#*=}
  if printf '%s\n' "$existing" | grep -qw "$name"; then
    echo "search attribute $name exists"
  else
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" -n "$ns" --name "$name" --type "$kind"
  fi
done
echo "namespace $ns ready"
