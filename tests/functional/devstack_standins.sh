# shellcheck shell=bash
# Minimal stand-ins for the devstack helpers vio4wd's plugin uses: each
# records its call (one line in $CALLS); iniset/iniget edit real files,
# run_process really starts the command (its output in $LOGDIR/NAME.log,
# its PID in $LOGDIR/NAME.pid) and stop_process stops it, sudo runs the
# command as the (root) test.

record() { printf '%s\n' "$*" >> "$CALLS"; }

define_plugin() { record define_plugin "$@"; }
enable_service() {
    record enable_service "$@"
    ENABLED_SERVICES="${ENABLED_SERVICES:+$ENABLED_SERVICES,}$*"
}
is_service_enabled() {
    local s
    for s in "$@"; do
        [[ ",$ENABLED_SERVICES," == *",$s,"* ]] && return 0
    done
    return 1
}
echo_summary() { record echo_summary "$@"; }
install_package() { record install_package "$@"; }
pip_install() { record pip_install "$@"; }
setup_develop() { record setup_develop "$@"; }
get_transport_url() { echo "$TEST_TRANSPORT_URL"; }
openstack() { record openstack "$@"; }
sudo() { record sudo "$@"; "$@"; }

iniset() {
    record iniset "$@"
    python3 - "$@" <<'PY'
import configparser, os, sys
path, section, option, value = sys.argv[1:5]
c = configparser.RawConfigParser(strict=False, interpolation=None)
c.optionxform = str
c.read(path)
if section != "DEFAULT" and not c.has_section(section):
    c.add_section(section)
c.set(section, option, value)
os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
with open(path, "w") as f:
    c.write(f)
PY
}

iniget() {
    python3 - "$@" <<'PY'
import configparser, sys
path, section, option = sys.argv[1:4]
c = configparser.RawConfigParser(strict=False, interpolation=None)
c.optionxform = str
c.read(path)
print(c.get(section, option, fallback=""))
PY
}

run_process() {
    record run_process "$@"
    local name=$1 command=$2
    # shellcheck disable=SC2086
    setsid $command > "$LOGDIR/$name.log" 2>&1 < /dev/null &
    echo $! > "$LOGDIR/$name.pid"
}

stop_process() {
    record stop_process "$@"
    local pidfile="$LOGDIR/$1.pid"
    if [[ -f $pidfile ]]; then
        kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    fi
}
