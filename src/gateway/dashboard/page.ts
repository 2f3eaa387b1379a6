/**
 * The dashboard page's script (bundled by scripts/build-dashboard.mjs into the page's one
 * inline <script>): sign-in, the live view of the tenant's sessions and turns, and the chat.
 */
import { renderChart } from './chart.js';
import { newKey, selectSession, send } from './chat.js';
import { connect, signOut } from './connection.js';
import { $ } from './dom.js';
import { CHAT_KEY, state, TOKEN_KEY } from './state.js';

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('token');
  const token = input.value.trim();
  if (!token) return;
  state.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  input.value = '';
  void connect();
});
$('signout').addEventListener('click', () => signOut(''));
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $<HTMLTextAreaElement>('chat-input');
  const message = input.value;
  if (!message.trim() || state.sending) return;
  input.value = '';
  void send(message);
});
$('chat-input').addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $<HTMLFormElement>('chat-form').requestSubmit();
  }
});
$('chat-new').addEventListener('click', () => selectSession(newKey()));
$('chat-key').addEventListener('change', () =>
  selectSession($<HTMLInputElement>('chat-key').value.trim()),
);
$('sessions').addEventListener('click', (event) => {
  const row = (event.target as Element).closest('tr');
  const key = row?.dataset['key'];
  if (row && key !== undefined) selectSession(key, row.dataset['agent']);
});

$<HTMLInputElement>('chat-key').value = sessionStorage.getItem(CHAT_KEY) || newKey();
renderChart();
window.addEventListener('resize', renderChart);
void connect();
