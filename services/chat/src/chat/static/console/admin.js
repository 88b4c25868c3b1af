/* Beckon console feature: admin (to be built). */
'use strict';
