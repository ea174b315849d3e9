# Sourced by the scripts that make a committed policy (train_demo_policy.sh, train_so101_policy.sh) with their
# arguments: sets UPDATE_ASSET=1 for `--update-asset`, 0 without it, and refuses any other argument (exit 2).
UPDATE_ASSET=0
for arg in "$@"; do
  case "$arg" in
    --update-asset) UPDATE_ASSET=1 ;;
    *) echo "usage: $0 [--update-asset]  (unknown argument: $arg)" >&2; exit 2 ;;
  esac
done
