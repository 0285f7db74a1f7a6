//! SUPER and VARBYTE on PostgreSQL: the types (domains over jsonb / bytea) and the
//! Redshift functions over them, installed in every database at bootstrap (`pool.rs`).
//! `super_sql.rs` rewrites calls, navigation and casts onto these functions.
//!
//! Sources (Amazon Redshift Database Developer Guide):
//! - "JSON_PARSE function" (VARBYTE or VARCHAR argument),
//!   https://docs.aws.amazon.com/redshift/latest/dg/JSON_PARSE.html;
//! - "CAN_JSON_PARSE function", https://docs.aws.amazon.com/redshift/latest/dg/CAN_JSON_PARSE.html;
//! - "SUPER configurations": invalid JSON is an error (`parse_super_null_on_error=OFF`),
//!   duplicate attributes are an error (`json_parse_dedup_attributes=OFF`), strings over
//!   65535 bytes are an error (`json_parse_truncate_strings=OFF`),
//!   https://docs.aws.amazon.com/redshift/latest/dg/super-configurations.html;
//! - "Querying semistructured data": lax navigation (NULL for a missing attribute, a
//!   non-object, a non-array or an index out of bounds), lax casts (a value of the wrong
//!   dynamic type casts to NULL), the introspection functions (false for NULL),
//!   https://docs.aws.amazon.com/redshift/latest/dg/query-super.html;
//! - "FROM_VARBYTE function", https://docs.aws.amazon.com/redshift/latest/dg/r_FROM_VARBYTE.html.
//!
//! Numbers: "Ingesting and querying semistructured data in Amazon Redshift"
//! (https://docs.aws.amazon.com/redshift/latest/dg/super-overview.html) says JSON_PARSE
//! reads `[10.5, "first"]` as the DECIMAL 10.5: a number written without an exponent is an
//! exact DECIMAL (IS_DECIMAL true). The documentation is silent on exponents; the strict
//! choice is FLOAT8 for `1e3`, `1.0425e1` and for more than 38 digits (IS_FLOAT true), and a
//! parse error beyond FLOAT8 (`1e400`). In jsonb a FLOAT8 is the object
//! `{"__rs_float8": <shortest FLOAT8 text>}`, which every function here reads as a number.
//!
//! Every function is declared VOLATILE although none is: PostgreSQL does not pull a
//! subquery whose select list calls a volatile function up into the outer query, so a view
//! that navigates SUPER in one subquery and tests the results in the next evaluates each
//! navigation once per row instead of once per reference (nested validation views
//! otherwise expand to thousands of calls per row).

pub const SUPER_DDL: &str = r#"
DO $d$ BEGIN CREATE DOMAIN public.super AS jsonb; EXCEPTION WHEN duplicate_object THEN NULL; END $d$;
DO $d$ BEGIN CREATE DOMAIN public.varbyte AS bytea; EXCEPTION WHEN duplicate_object THEN NULL; END $d$;
-- One JSON value as SUPER: numbers typed as described above, attributes unique, strings <= 65535 bytes.
CREATE OR REPLACE FUNCTION public._rs_super_value(j json) RETURNS jsonb
  LANGUAGE plpgsql VOLATILE AS $f$
DECLARE t text; n numeric; f float8; out jsonb;
BEGIN
  CASE json_typeof(j)
    WHEN 'object' THEN
      IF (SELECT count(*) <> count(DISTINCT k) FROM json_object_keys(j) k) THEN
        RAISE EXCEPTION 'JSON parsing error: duplicate attribute name' USING ERRCODE = '22032';
      END IF;
      SELECT coalesce(jsonb_object_agg(e.key, public._rs_super_value(e.value)), '{}'::jsonb)
        INTO out FROM json_each(j) e;
      RETURN out;
    WHEN 'array' THEN
      SELECT coalesce(jsonb_agg(public._rs_super_value(e.value) ORDER BY e.ord), '[]'::jsonb)
        INTO out FROM json_array_elements(j) WITH ORDINALITY AS e(value, ord);
      RETURN out;
    WHEN 'number' THEN
      t := j::text;
      IF t !~ '[eE]' AND length(ltrim(regexp_replace(t, '[^0-9]', '', 'g'), '0')) <= 38 THEN
        RETURN to_jsonb(t::numeric);
      END IF;
      f := t::float8;
      RETURN jsonb_build_object('__rs_float8', f::text::numeric);
    WHEN 'string' THEN
      IF octet_length(j #>> '{}') > 65535 THEN
        RAISE EXCEPTION 'JSON parsing error: string value exceeds 65535 bytes' USING ERRCODE = '22032';
      END IF;
      RETURN j::jsonb;
    ELSE
      RETURN j::jsonb;
  END CASE;
END $f$;
CREATE OR REPLACE FUNCTION public.json_parse(text) RETURNS public.super
  LANGUAGE sql VOLATILE STRICT AS $f$ SELECT public._rs_super_value($1::json)::public.super $f$;
CREATE OR REPLACE FUNCTION public.json_parse(bytea) RETURNS public.super
  LANGUAGE sql VOLATILE STRICT AS $f$ SELECT public.json_parse(convert_from($1, 'UTF8')) $f$;
CREATE OR REPLACE FUNCTION public.can_json_parse(text) RETURNS boolean
  LANGUAGE plpgsql VOLATILE STRICT AS $f$
BEGIN PERFORM public.json_parse($1); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $f$;
CREATE OR REPLACE FUNCTION public.can_json_parse(bytea) RETURNS boolean
  LANGUAGE plpgsql VOLATILE STRICT AS $f$
BEGIN PERFORM public.json_parse($1); RETURN true; EXCEPTION WHEN others THEN RETURN false; END $f$;
CREATE OR REPLACE FUNCTION public._rs_raise_text(text) RETURNS text
  LANGUAGE plpgsql VOLATILE AS $f$ BEGIN RAISE EXCEPTION '%', $1; END $f$;
CREATE OR REPLACE FUNCTION public.from_varbyte(bytea, text) RETURNS varchar
  LANGUAGE sql VOLATILE STRICT AS $f$
  SELECT CASE lower($2)
    WHEN 'hex' THEN encode($1, 'hex')
    WHEN 'base64' THEN encode($1, 'base64')
    WHEN 'utf8' THEN convert_from($1, 'UTF8')
    WHEN 'utf-8' THEN convert_from($1, 'UTF8')
    WHEN 'ascii' THEN convert_from($1, 'SQL_ASCII')
    ELSE public._rs_raise_text('invalid format for FROM_VARBYTE: ' || $2)
  END $f$;
-- The dynamic type: jsonb's, or 'float' for a FLOAT8.
CREATE OR REPLACE FUNCTION public._rs_typeof(jsonb) RETURNS text
  LANGUAGE sql VOLATILE STRICT AS $f$
  SELECT CASE WHEN jsonb_typeof($1) = 'object' AND $1 ? '__rs_float8' THEN 'float' ELSE jsonb_typeof($1) END $f$;
CREATE OR REPLACE FUNCTION public._rs_number(jsonb) RETURNS numeric
  LANGUAGE sql VOLATILE STRICT AS $f$
  SELECT CASE public._rs_typeof($1) WHEN 'number' THEN ($1 #>> '{}')::numeric WHEN 'float' THEN ($1 ->> '__rs_float8')::numeric END $f$;
CREATE OR REPLACE FUNCTION public.json_typeof(jsonb) RETURNS varchar
  LANGUAGE sql VOLATILE STRICT AS $f$ SELECT replace(public._rs_typeof($1), 'float', 'number') $f$;
-- Compact text like Redshift's JSON_SERIALIZE (no blanks after ',' and ':').
CREATE OR REPLACE FUNCTION public._rs_serialize(j jsonb) RETURNS text
  LANGUAGE sql VOLATILE STRICT AS $f$
  SELECT CASE public._rs_typeof(j)
    WHEN 'float' THEN j ->> '__rs_float8'
    WHEN 'object' THEN '{' || coalesce((SELECT string_agg(to_jsonb(e.key)::text || ':' || public._rs_serialize(e.value), ',' ORDER BY e.key) FROM jsonb_each(j) e), '') || '}'
    WHEN 'array' THEN '[' || coalesce((SELECT string_agg(public._rs_serialize(e.value), ',' ORDER BY e.ord) FROM jsonb_array_elements(j) WITH ORDINALITY AS e(value, ord)), '') || ']'
    ELSE j::text
  END $f$;
CREATE OR REPLACE FUNCTION public.json_serialize(jsonb) RETURNS varchar
  LANGUAGE sql VOLATILE STRICT AS $f$ SELECT public._rs_serialize($1) $f$;
CREATE OR REPLACE FUNCTION public._rs_is_int_in(jsonb, numeric, numeric) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(public._rs_typeof($1) = 'number' AND scale(($1 #>> '{}')::numeric) = 0 AND ($1 #>> '{}')::numeric BETWEEN $2 AND $3, false) $f$;
CREATE OR REPLACE FUNCTION public.is_float(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(public._rs_typeof($1) = 'float', false) $f$;
CREATE OR REPLACE FUNCTION public.is_decimal(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(public._rs_typeof($1) = 'number', false) $f$;
CREATE OR REPLACE FUNCTION public.is_smallint(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT public._rs_is_int_in($1, -32768, 32767) $f$;
CREATE OR REPLACE FUNCTION public.is_integer(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT public._rs_is_int_in($1, -2147483648, 2147483647) $f$;
CREATE OR REPLACE FUNCTION public.is_bigint(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT public._rs_is_int_in($1, -9223372036854775808, 9223372036854775807) $f$;
CREATE OR REPLACE FUNCTION public.is_varchar(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(jsonb_typeof($1) = 'string', false) $f$;
CREATE OR REPLACE FUNCTION public.is_boolean(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(jsonb_typeof($1) = 'boolean', false) $f$;
CREATE OR REPLACE FUNCTION public.is_object(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(public._rs_typeof($1) = 'object', false) $f$;
CREATE OR REPLACE FUNCTION public.is_array(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(jsonb_typeof($1) = 'array', false) $f$;
CREATE OR REPLACE FUNCTION public.is_scalar(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT coalesce(public._rs_typeof($1) NOT IN ('object', 'array', 'null'), false) $f$;
-- Lax navigation: NULL for a non-object / non-array, a missing attribute, an index out of bounds.
CREATE OR REPLACE FUNCTION public._rs_nav(jsonb, text) RETURNS public.super
  LANGUAGE sql VOLATILE AS $f$ SELECT (CASE WHEN public._rs_typeof($1) = 'object' THEN $1 -> $2 END)::public.super $f$;
CREATE OR REPLACE FUNCTION public._rs_idx(jsonb, integer) RETURNS public.super
  LANGUAGE sql VOLATILE AS $f$ SELECT (CASE WHEN jsonb_typeof($1) = 'array' AND $2 >= 0 THEN $1 -> $2 END)::public.super $f$;
-- Lax casts: a value of another dynamic type casts to NULL.
CREATE OR REPLACE FUNCTION public._rs_super_text(jsonb) RETURNS varchar
  LANGUAGE sql VOLATILE AS $f$ SELECT CASE WHEN jsonb_typeof($1) = 'string' THEN $1 #>> '{}' END $f$;
CREATE OR REPLACE FUNCTION public._rs_super_numeric(jsonb) RETURNS numeric
  LANGUAGE sql VOLATILE AS $f$ SELECT public._rs_number($1) $f$;
CREATE OR REPLACE FUNCTION public._rs_super_float(jsonb) RETURNS float8
  LANGUAGE sql VOLATILE AS $f$ SELECT public._rs_number($1)::float8 $f$;
CREATE OR REPLACE FUNCTION public._rs_super_bool(jsonb) RETURNS boolean
  LANGUAGE sql VOLATILE AS $f$ SELECT CASE WHEN jsonb_typeof($1) = 'boolean' THEN ($1 #>> '{}')::boolean END $f$;
CREATE OR REPLACE FUNCTION public._rs_super_timestamp(jsonb) RETURNS timestamp
  LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
  IF jsonb_typeof($1) <> 'string' THEN RETURN NULL; END IF;
  RETURN ($1 #>> '{}')::timestamp;
EXCEPTION WHEN others THEN RETURN NULL;
END $f$;
"#;
