#!/bin/sh
# Fixes, in place, the lines of Debian's ganglia-webfrontend 3.7.5 that PHP 8 refuses (the
# rest comes from php8-compat.php). Prints `changed` when it edited anything. Each edit
# matches the original line exactly, so a fixed file, or a later package that fixed it
# differently, is left alone; and each is harmless on PHP 7.
#
# usage: php8-fix.sh WEB_ROOT
set -eu
root=$1
changed=

# fix FILE SED_PATTERN SED_REPLACEMENT
fix() {
  if grep -q -- "$2" "$root/$1"; then
    sed -i "s/$2/$3/g" "$root/$1"
    changed=1
  fi
}

# Gmetad() reads $SKIP_GMETAD_CONTEXTS without declaring it global: null, which in_array()
# refuses in PHP 8 (a TypeError; PHP 7 only warned).
fix ganglia.php \
  'global \$conf, \$error, \$parsetime, \$clustername, \$hostname, \$context, \$debug;' \
  'global $conf, $error, $parsetime, $clustername, $hostname, $context, $debug, $SKIP_GMETAD_CONTEXTS;'
# PHP 8 calls error handlers with four arguments; this one requires five.
fix lib/common_api.php \
  'function ganglia_api_error_handler (\$no, \$str, \$file, \$line, \$context)' \
  'function ganglia_api_error_handler ($no, $str, $file, $line, $context = null)'
# Dwoo passes plugin parameters keyed by name ('*'); PHP 8 takes string keys of
# call_user_func_array() as named parameters and fails. PHP 7 passed them by position.
fix dwoo/Dwoo/Compiler.php \
  'call_user_func_array(\$funcCompiler, \$params)' \
  'call_user_func_array($funcCompiler, array_values($params))'

[ -z "$changed" ] || echo changed
