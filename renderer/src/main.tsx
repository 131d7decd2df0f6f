import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.tsx';
import { createClient } from './client/create-client.ts';
import { useStudio } from './stores/studio.ts';
import './styles.css';
import './theme-light.css';
import './narrow.css';
// Before the first paint: the page opens in its theme, not dark first.
import './stores/theme.ts';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// Connect once, outside React, so StrictMode's double effects cannot open two event channels.
useStudio.getState().connect(createClient());

createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
