-- expect: refuse
/*M!100100 SET SESSION sql_log_bin = 0 */
