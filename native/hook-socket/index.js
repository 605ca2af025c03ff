'use strict';
module.exports = require('./build/Release/hook_socket.node');
