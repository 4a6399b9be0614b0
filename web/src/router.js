// router.js - the console's pages by path under /ui/, with the History API.
// The server answers every such path with index.html (src/front/ui.c).
import { ref } from 'vue';

export const BASE = '/ui';
const here = () => {
  const p = window.location.pathname.startsWith(`${BASE}/`) ? window.location.pathname.slice(BASE.length) : '/';
  return p === '' ? '/' : p;
};
export const path = ref(here());
window.addEventListener('popstate', () => { path.value = here(); });

export function go(p) {
  if (p === path.value) return;
  window.history.pushState({}, '', BASE + p);
  path.value = p;
  window.scrollTo(0, 0);
}
