/* Beckon console feature: toolkit (to be built). */
'use strict';
