//! Which functions are built in, and which are refused.

/// PostgreSQL functions that need superuser or a server-side role, and so are refused.
pub(crate) fn pg_refused(name: &str) -> Option<&'static str> {
    const FILES: &[&str] = &[
        "pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_ls_logdir", "pg_ls_waldir",
        "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir", "pg_ls_logicalmapdir",
        "pg_ls_replslotdir", "lo_import", "lo_export", "pg_file_write", "pg_file_rename", "pg_file_unlink",
        "pg_file_sync", "pg_logdir_ls",
    ];
    const ADMIN: &[&str] = &[
        "pg_terminate_backend", "pg_cancel_backend", "pg_reload_conf", "pg_rotate_logfile", "pg_switch_wal",
        "pg_create_restore_point", "pg_promote", "pg_start_backup", "pg_stop_backup", "pg_backup_start",
        "pg_backup_stop", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
        "pg_drop_replication_slot", "pg_log_backend_memory_contexts", "pg_import_system_collations",
        "pg_replication_origin_create", "pg_replication_origin_drop", "pg_wal_replay_pause", "pg_wal_replay_resume",
        "pg_signal_backend", "dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "set_config",
    ];
    if FILES.contains(&name) {
        Some("reads or writes server files; it needs superuser")
    } else if ADMIN.contains(&name) {
        Some("is an administrative function; it needs superuser or a server role p0 never grants")
    } else {
        None
    }
}

/// Common PostgreSQL built-ins, recognised without a catalog (with one, `pg_catalog` decides).
pub(crate) fn pg_builtin(name: &str) -> bool {
    const B: &[&str] = &[
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg", "jsonb_agg", "bool_and",
        "bool_or", "every", "stddev", "variance", "row_number", "rank", "dense_rank", "percent_rank", "cume_dist",
        "ntile", "lag", "lead", "first_value", "last_value", "nth_value", "coalesce", "nullif", "greatest", "least",
        "now", "current_date", "current_timestamp", "localtimestamp", "clock_timestamp", "statement_timestamp",
        "date_trunc", "date_part", "extract", "age", "to_char", "to_date", "to_timestamp", "to_number",
        "make_date", "make_interval", "lower", "upper", "length", "char_length", "substr", "substring", "trim",
        "btrim", "ltrim", "rtrim", "replace", "concat", "concat_ws", "left", "right", "position", "strpos",
        "split_part", "regexp_replace", "regexp_matches", "regexp_match", "format", "md5", "abs", "round", "ceil",
        "ceiling", "floor", "trunc", "mod", "power", "sqrt", "random", "generate_series", "unnest", "array_length",
        "cardinality", "jsonb_build_object", "json_build_object", "to_json", "to_jsonb", "jsonb_set",
        "jsonb_array_elements", "json_array_elements", "row_to_json", "current_setting", "version",
        "pg_typeof", "encode", "decode", "gen_random_uuid", "exists", "cast", "array_to_string", "string_to_array",
        "initcap", "lpad", "rpad", "repeat", "reverse", "sign", "exp", "ln", "log", "pi", "tsvector_update_trigger",
        "to_tsvector", "to_tsquery", "plainto_tsquery", "websearch_to_tsquery", "ts_rank", "setweight",
    ];
    B.contains(&name)
}

/// MySQL functions that need FILE, SUPER or similar, and so are refused.
pub(crate) fn mysql_refused(name: &str) -> Option<&'static str> {
    match name {
        "load_file" => Some("reads server files; it needs the FILE privilege"),
        "sys_exec" | "sys_eval" => Some("runs server commands"),
        _ => None,
    }
}

/// In MySQL an unqualified function is taken as built in; stored functions are named with
/// their database.
pub(crate) fn mysql_builtin(_name: &str) -> bool {
    true
}
