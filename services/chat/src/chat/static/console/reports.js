/* Beckon console feature: reports (to be built). */
'use strict';
