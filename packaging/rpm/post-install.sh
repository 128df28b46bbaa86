# The REST API saves configuration changes in this directory; closed to others, as the
# configuration may hold passwords.
chown aerospike-backup:aerospike-backup /etc/aerospike-backup-service
chmod 0750 /etc/aerospike-backup-service
# As %systemd_post: reload units; enable only where the preset says so.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -eq 1 ]; then
        systemctl --no-reload preset aerospike-backup-service.service >/dev/null 2>&1 || :
    fi
fi
exit 0
