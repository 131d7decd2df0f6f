/**
 * Lets a page's store follow the services' events whichever page is open (a job that ends while the user looks
 * elsewhere still lands): bound to whatever client the studio store holds, and rebound when it changes. `onOpen`
 * runs each time the event channel (re)opens, to fetch what was missed.
 */
import type { StudioEventMessage } from '../../../common/protocol.ts';
import type { StudioClient } from '../client/transport.ts';
import { useStudio } from './studio.ts';

export function followStudioEvents(onEvent: (message: StudioEventMessage) => void, onOpen?: () => void): void {
  let bound: StudioClient | null = null;
  let unbind: (() => void) | null = null;
  const bind = (c: StudioClient | null): void => {
    if (c === bound) return;
    unbind?.();
    bound = c;
    unbind = c ? c.onEvent(onEvent) : null;
  };
  bind(useStudio.getState().client);
  useStudio.subscribe((s, prev) => {
    bind(s.client);
    if (onOpen && s.connection === 'open' && prev.connection !== 'open') onOpen();
  });
}
