// Integration and end-to-end tests start processes and wait on real state: give them room.
jest.setTimeout(180_000);
