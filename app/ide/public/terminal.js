// Berth's terminal IDE in the browser: xterm.js on a WebSocket to a `docker exec` in the
// workspace. Keystrokes and size changes go up as JSON; the program's output comes down as
// binary frames. Served from Berth itself (no CDN).
(function () {
  'use strict';
  var status = document.getElementById('status');
  var term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 5000, fontFamily: 'ui-monospace, Menlo, Consolas, monospace' });
  var fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(document.getElementById('term'));
  fit.fit();
  term.focus();

  var proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var url = proto + '//' + location.host + '/__berth/terminal?cols=' + term.cols + '&rows=' + term.rows;
  var socket = new WebSocket(url);
  socket.binaryType = 'arraybuffer';
  var send = function (msg) {
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
  };
  var say = function (text, state) {
    status.textContent = text;
    document.body.dataset.terminal = state;
  };
  say('connecting…', 'connecting');

  socket.onopen = function () {
    say('connected', 'open');
    send({ type: 'resize', cols: term.cols, rows: term.rows });
  };
  socket.onmessage = function (event) {
    term.write(new Uint8Array(event.data));
  };
  socket.onclose = function (event) {
    say('disconnected' + (event.reason ? ': ' + event.reason : '') + ' (reload to start again)', 'closed');
    term.write('\r\n\x1b[2m[' + (event.reason || 'connection closed') + ' — reload the page for a new session]\x1b[0m\r\n');
  };
  term.onData(function (data) {
    send({ type: 'input', data: data });
  });
  term.onResize(function (size) {
    send({ type: 'resize', cols: size.cols, rows: size.rows });
  });
  window.addEventListener('resize', function () {
    fit.fit();
  });
})();
