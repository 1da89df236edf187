// What every page reaches the API through; tests provide their own (a client on a fake fetch).
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { api, type ApiClient } from './api/client';
import { LiveNotifications } from './live';

export interface Services {
  api: ApiClient;
  live: LiveNotifications;
}

export const defaultServices: Services = { api, live: new LiveNotifications(api) };
export const ServicesContext = createContext<Services>(defaultServices);
export const useServices = () => useContext(ServicesContext);
