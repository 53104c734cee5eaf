# t_shard_diff with each shard on a PostgreSQL cluster of its own, as in
# production, and another seed (SHARD_DIFF_SEED overrides it).
SHARD_DIFF_CLUSTERS=1
SHARD_DIFF_SEED=${SHARD_DIFF_SEED:-2727}
SHARD_DIFF_LABEL=shard_diff_clusters
source "$(dirname "$0")/t_shard_diff.sh"
