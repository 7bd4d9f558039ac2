-- expect: ok
/*!50003 CALL p_inv(7) */
