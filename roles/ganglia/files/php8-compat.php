<?php
// Prepended to every page of Debian's ganglia-webfrontend (3.7.5, in Debian 12 and
// Ubuntu 22.04), written for PHP 5 and 7, so that it runs on the PHP 8 those releases
// ship. PHP 8 removed each(), which the bundled Dwoo template compiler calls, and made an
// undefined constant (cluster_view.php reads $cluster[LOCALTIME]) a fatal error. Both are
// supplied here only where PHP lacks them, so an older PHP is unaffected.
if (!function_exists('each')) {
    function each(array &$array)
    {
        $key = key($array);
        if ($key === null) {
            return false;
        }
        $value = current($array);
        next($array);
        return array(1 => $value, 'value' => $value, 0 => $key, 'key' => $key);
    }
}
if (!defined('LOCALTIME')) {
    define('LOCALTIME', 'LOCALTIME');
}
