/* Beckon console feature: card (to be built). */
'use strict';
