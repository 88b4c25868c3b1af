/* Beckon console feature: live (to be built). */
'use strict';
