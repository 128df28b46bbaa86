# The user of /usr/lib/sysusers.d/aerospike-backup-service.conf, created before the files.
getent group aerospike-backup >/dev/null || groupadd --system aerospike-backup
getent passwd aerospike-backup >/dev/null || useradd --system --gid aerospike-backup \
    --home-dir /var/lib/aerospike-backup-service --no-create-home --shell /sbin/nologin \
    --comment "Aerospike Backup Service" aerospike-backup
exit 0
