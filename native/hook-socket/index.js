'use strict';
module.exports = require('./build/Release/peercred.node');
